"""One load generator for every server under test: wrk, driven with a Lua script.

Every comparison uses the same tool, thread count, connection count and
duration; the script makes wrk report p50/p95/p99 and error counts as JSON. gRPC,
which wrk cannot speak (HTTP/2), is loaded by h2load (nghttp2's, C as wrk is) with
the same connections and duration: ``run_h2load``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydantic import BaseModel

# wrk counts a status >= 400 as an error (errors.status); socket errors apart.
_SCRIPT = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("WRK_AUTHORIZATION")
if auth and auth ~= "" then wrk.headers["Authorization"] = auth end
wrk.body = io.open(os.getenv("WRK_BODY"), "rb"):read("*a")
local extra = os.getenv("WRK_HEADERS") or ""
for name, value in string.gmatch(extra, "([^:\\n]+): ([^\\n]+)") do wrk.headers[name] = value end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '\\nRESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "socket_errors": %d, '
    .. '"p50_us": %d, "p95_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99)))
end
"""


class LoadResult(BaseModel):
    """What one load run measured."""

    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors

    def row(self) -> list[str]:
        return [
            f"{self.rps:,.0f}",
            f"{self.p50_ms:.1f}",
            f"{self.p95_ms:.1f}",
            f"{self.p99_ms:.1f}",
            str(self.errors),
        ]


def wrk_path() -> str:
    """The wrk binary; `make bench` installs it (Debian package `wrk`)."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: run `make bench` (or apt-get install wrk)")
    return found


def run_load(
    url: str,
    body: bytes,
    connections: int = 8,
    duration_s: float = 10.0,
    threads: int = 2,
    authorization: str | None = None,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST ``body`` to ``url`` from ``connections`` keep-alive connections for a while.

    ``authorization``: the Authorization header of every request (maas_ray's key;
    the baselines ignore it, so every server gets the same request). ``headers``: more
    headers (a Content-Type among them replaces JSON's).
    """
    with tempfile.TemporaryDirectory(prefix="maas-wrk-") as tmp:
        script, data = Path(tmp) / "post.lua", Path(tmp) / "body.json"
        script.write_text(_SCRIPT)
        data.write_bytes(body)
        proc = subprocess.run(
            [
                wrk_path(),
                f"-t{min(threads, connections)}",
                f"-c{connections}",
                f"-d{duration_s:g}s",
                "--timeout",
                "30s",
                "-s",
                str(script),
                url,
            ],
            capture_output=True,
            text=True,
            env={
                "WRK_BODY": str(data),
                "WRK_AUTHORIZATION": authorization or "",
                "WRK_HEADERS": "\n".join(f"{k}: {v}" for k, v in (headers or {}).items()),
                "PATH": "/usr/bin:/bin",
            },
            check=False,
        )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    raw = json.loads(lines[-1].removeprefix("RESULT "))
    seconds = raw["duration_us"] / 1e6
    return LoadResult(
        rps=raw["requests"] / seconds,
        p50_ms=raw["p50_us"] / 1000,
        p95_ms=raw["p95_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        requests=raw["requests"],
        errors=raw["non2xx"] + raw["socket_errors"],
    )


def h2load_path() -> str:
    """The h2load binary; `make bench` installs it (Debian package `nghttp2-client`)."""
    found = shutil.which("h2load")
    if found is None:
        raise SystemExit(
            "h2load is not installed: run `make bench` (or apt-get install nghttp2-client)"
        )
    return found


def grpc_frame(message: bytes) -> bytes:
    """A gRPC request body: uncompressed flag, 4-byte big-endian length, the message."""
    return b"\0" + len(message).to_bytes(4, "big") + message


def run_h2load(
    url: str,
    body: bytes,
    connections: int = 8,
    duration_s: float = 10.0,
    threads: int = 2,
    headers: dict[str, str] | None = None,
) -> LoadResult:
    """POST ``body`` over HTTP/2 from ``connections`` connections, one request in flight
    on each (as wrk), for ``duration_s``; percentiles from h2load's per-request log.

    For gRPC, ``url`` is ``http://host:port/package.Service/Method`` and ``body`` a
    framed message (``grpc_frame``). h2load sees HTTP statuses only, and a gRPC error
    travels as a 200 with a ``grpc-status`` trailer: check one call's status with a
    gRPC client before the load.
    """
    with tempfile.TemporaryDirectory(prefix="maas-h2load-") as tmp:
        data, log = Path(tmp) / "body.bin", Path(tmp) / "requests.log"
        data.write_bytes(body)
        command = [
            h2load_path(),
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            "-m1",
            f"-D{max(1, round(duration_s))}",
            "-d",
            str(data),
            f"--log-file={log}",
        ]
        for name, value in (headers or {}).items():
            command += ["-H", f"{name}: {value}"]
        proc = subprocess.run(command + [url], capture_output=True, text=True, check=False)
        lines = log.read_text().splitlines() if log.exists() else []
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"h2load failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    finished = re.search(r"finished in [\d.]+s, ([\d.]+) req/s", proc.stdout)
    if finished is None:
        raise RuntimeError(f"h2load gave no rate: {proc.stdout[-500:]}")
    # each log line: start (µs since the epoch), HTTP status, duration (µs)
    records = [line.split("\t") for line in lines]
    durations = sorted(int(r[2]) / 1000 for r in records)

    def pick(q: float) -> float:
        return durations[min(len(durations) - 1, int(len(durations) * q))]

    return LoadResult(
        rps=float(finished.group(1)),
        p50_ms=pick(0.50),
        p95_ms=pick(0.95),
        p99_ms=pick(0.99),
        requests=len(records),
        errors=sum(1 for r in records if not r[1].startswith("2")),
    )
