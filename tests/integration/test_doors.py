"""Ray's own doors: token authentication on, every listener on loopback or token-guarded.

All traffic stays on 127.0.0.1. A client "without the token" is a subprocess whose
environment carries none (no RAY_AUTH_*, a HOME without ~/.ray/auth_token).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import psutil

from maas_ray import Settings
from maas_ray.control import platform, sessions
from maas_ray.security.ray_token import client_env, dashboard_headers
from tests.conftest import ROOT, maas

ATTACH = """
import sys, ray
ray.init(address=sys.argv[1])
@ray.remote
def one():
    return 1
print("ATTACHED", sum(ray.get([one.remote() for _ in range(3)])))
"""


def _run(script: str, arg: str, env: dict[str, str], timeout_s: float = 120) -> str:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script, arg],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        return f"timed out: {exc.stdout!r} {exc.stderr!r}"
    return proc.stdout + proc.stderr


def _tokenless(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["HOME"] = str(tmp_path)  # no ~/.ray/auth_token to fall back on
    # Only so Ray does not swap 127.0.0.1 for the machine's address: the refusal
    # must come from the token check, not from a port nobody listens on.
    env["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # Refused clients retry: a driver asks the GCS 20 times a second apart, a ray://
    # client waits 5, 10 and 15 s between its three tries. Fewer and shorter (each
    # try is still refused for its token): the test took ~30 s, now ~6.
    env["RAY_NUM_REDIS_GET_RETRIES"] = "3"
    env["RAY_CLIENT_INITIAL_CONNECTION_TIMEOUT_S"] = "2"
    env["RAY_CLIENT_MAX_CONNECTION_TIMEOUT_S"] = "2"
    assert "RAY_AUTH_TOKEN_PATH" not in env
    return env


def _with_token(live: Settings) -> dict[str, str]:
    return {**os.environ, **client_env(live)}


def test_token_file_is_owner_only(live: Settings) -> None:
    path = live.ray_token_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", path.read_text().strip())


def test_clients_without_the_token_are_refused(
    seeded: dict[str, object], live: Settings, tmp_path: Path
) -> None:
    env = _tokenless(tmp_path)
    gcs = (
        "import sys\n"
        "from ray.autoscaler.v2.sdk import get_cluster_status\n"
        "print('ATTACHED', get_cluster_status(sys.argv[1], timeout=10))\n"
    )
    client = "import sys, ray\nray.init(sys.argv[1])\nprint('ATTACHED', ray.get(ray.put(1)))\n"
    with ThreadPoolExecutor(3) as pool:
        outs = list(
            pool.map(
                lambda job: _run(job[0], job[1], env, timeout_s=150),
                [
                    (gcs, live.ray_address),
                    (ATTACH, live.ray_address),
                    (client, f"ray://{live.host}:{live.ray_client_port}"),
                ],
            )
        )
    for out in outs:
        assert "ATTACHED" not in out, out
    assert "InvalidAuthToken" in outs[0] or "Authentication" in outs[0], outs[0]
    # The dashboard (Serve REST API, Jobs API) asks for the token too.
    resp = httpx.get(f"{live.dashboard_url}/api/version", timeout=10)
    assert resp.status_code == 401
    resp = httpx.get(f"{live.dashboard_url}/api/version", headers=dashboard_headers(live))
    assert resp.status_code == 200


def test_clients_with_the_token_attach(seeded: dict[str, object], live: Settings) -> None:
    env = _with_token(live)
    out = _run(ATTACH, live.ray_address, env)
    assert "ATTACHED 3" in out, out
    script = "import sys, ray\nray.init(sys.argv[1])\nprint('ATTACHED', ray.get(ray.put(7)))\n"
    # Ray 2.60's client server sometimes fails to start the first per-client
    # server ("SpecificServer startup failed"), token or not: a client retries.
    tries = []
    for _ in range(3):
        tries.append(_run(script, f"ray://{live.host}:{live.ray_client_port}", env, 90))
        if "ATTACHED 7" in tries[-1]:
            break
    assert "ATTACHED 7" in tries[-1], "\n---\n".join(tries)


def test_ray_status_and_env_from_maas_ray_env(live: Settings, env: dict[str, str]) -> None:
    """What README shows: eval "$(maas ray-env)" then ray status."""
    exports = maas(env, "ray-env").stdout
    assert "RAY_AUTH_MODE=token" in exports
    assert str(live.ray_token_file) in exports
    ray = Path(sys.executable).parent / "ray"
    clean = {k: v for k, v in env.items() if not k.startswith("RAY_")}
    proc = subprocess.run(
        ["bash", "-c", f'eval "$1"; "{ray}" status', "_", exports],
        env=clean,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Node status" in proc.stdout


def _loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_loopback


def _listeners(live: Settings) -> list[tuple[str, int, str]]:
    pids = {
        p.pid: p
        for v in platform._load_state(live).values()
        if "sid" in v
        for p in sessions.processes(v["sid"])
    }
    found = []
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            try:
                name = " ".join(pids[conn.pid].cmdline())[:120]
            except psutil.Error:
                continue
            found.append((conn.laddr.ip, conn.laddr.port, name))
    return found


# Listeners Ray 2.60 binds on every interface with no setting to change it; each
# is token-guarded, and README's Security section names it (see _readme_ports).
ALL_INTERFACES = {"ray::ServeReplica": "/ray.serve.ASGIService/HandleRequest"}


def _probe_without_token(port: int, method: str) -> grpc.StatusCode:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            channel.unary_unary(method)(b"", timeout=10)
        except grpc.RpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


def test_every_listener_is_loopback_or_token_guarded(
    seeded: dict[str, object], live: Settings
) -> None:
    listeners = _listeners(live)
    ports = {port for _, port, _ in listeners}
    # The parts this test exists for are really there, and on loopback.
    parts = (live.ray_port, live.ray_client_port, live.ray_agent_port, live.serve_port)
    for port in (*parts, live.grpc_port):
        assert port in ports, (port, listeners)
    exposed = [x for x in listeners if not _loopback(x[0])]
    for ip, port, name in exposed:
        kind = next((k for k in ALL_INTERFACES if name.startswith(k)), None)
        assert kind, f"{name} listens on {ip}:{port}, not loopback and not a guarded port"
        assert _probe_without_token(port, ALL_INTERFACES[kind]) == grpc.StatusCode.UNAUTHENTICATED
    haproxy = {port for ip, port, name in listeners if "haproxy" in name}
    assert {live.ingress_stats_port, live.ingress_metrics_port} <= haproxy
    readme = _security_section()
    assert "inter-deployment gRPC" in readme
    assert "all interfaces" in readme


def _security_section() -> str:
    text = (ROOT / "README.md").read_text()
    return text[text.index("## Security") : text.index("## Benchmarks")]


def test_readme_names_every_port_maas_up_opens() -> None:
    defaults = Settings()
    section = _security_section()
    for field, value in defaults.model_dump().items():
        if field.endswith("_port"):
            assert re.search(rf"\b{value}\b", section), f"README Security lacks {field}={value}"
        if field.endswith("_ports"):
            assert value in section, f"README Security lacks {field}={value}"


def test_ray_auth_off_warns_on_up(live: Settings, env: dict[str, str]) -> None:
    """MAAS_RAY_AUTH=off is said on every start (here: the platform is already up)."""
    proc = maas({**env, "MAAS_RAY_AUTH": "off"}, "up", check=False)
    assert "MAAS_RAY_AUTH=off" in proc.stderr.replace("\n", " "), proc.stderr
