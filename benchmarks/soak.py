"""Soak: minutes of load at half a model's capacity, one of its replicas SIGKILLed every
two minutes; success rate, p99 and memory over time, printed and charted.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and the
tests), registers a scikit-learn pipeline on breast_cancer (the shape of the
``tabular`` example), serves it with two fixed replicas, measures what four
back-to-back SDK clients get answered, then sends half of that through SDK clients
(their retries on, as an application would) for ``--minutes``. Every ``--kill-every``
seconds one replica's process is SIGKILLed; Serve starts another. Each 10 s window
records the predicts sent, those that failed, p50/p99, and the resident memory of the
model's replicas and of the whole platform (every process of Ray's session and the
MLflow server). Stops the platform by process id at the end.

    .venv/bin/python -m benchmarks.soak [--minutes 10] [--kill-every 120]

Writes benchmarks/results/soak.json and soak.png.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
from rich.console import Console
from rich.table import Table

from benchmarks._common import bench_settings, running
from maas_ray import MaaS, Settings
from maas_ray.control import sessions
from maas_ray.errors import MaasError
from maas_ray.security.ray_token import dashboard_headers

NAME = "soak"
WINDOW_S = 10.0
RESULTS = Path(__file__).with_name("results")


def _replicas(settings: Settings) -> list[dict[str, Any]]:
    apps = httpx.get(
        f"{settings.dashboard_url}/api/serve/applications/",
        headers=dashboard_headers(settings),
        timeout=30,
    ).json()["applications"]
    return list(apps[NAME]["deployments"]["ModelServer"]["replicas"])


def _rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += psutil.Process(pid).memory_info().rss
        except psutil.Error:
            continue
    return total / 2**20


def _platform_pids(settings: Settings) -> list[int]:
    state = json.loads((settings.run_dir / "processes.json").read_text())
    pids = []
    for part in ("ray", "mlflow"):
        sid = state.get(part, {}).get("sid")
        if sid:
            pids += [p.pid for p in sessions.processes(int(sid))]
    return pids


class Load:
    """SDK clients sending ``rate`` predicts of ``model`` a second in all, paced, their
    retries on; records (start, seconds, error or None) of each predict."""

    def __init__(
        self, settings: Settings, rate: float, row: list[float], threads: int = 4, model: str = NAME
    ) -> None:
        self.settings, self.row, self.model = settings, row, model
        self.interval = threads / rate
        self.records: list[tuple[float, float, str | None]] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        sdk = MaaS(self.settings)
        next_at = time.perf_counter()
        try:
            while not self._stop.is_set():
                started = time.perf_counter()
                error = None
                try:
                    sdk.predict(self.model, [self.row])
                except MaasError as exc:
                    error = repr(exc)
                self.records.append((started, time.perf_counter() - started, error))
                next_at = max(next_at + self.interval, time.perf_counter())
                self._stop.wait(next_at - time.perf_counter())
        finally:
            sdk.close()

    def between(self, start: float, end: float) -> list[tuple[float, float, str | None]]:
        """The records of predicts started in [start, end) (perf_counter seconds)."""
        return [r for r in list(self.records) if start <= r[0] < end]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)


def capacity(
    settings: Settings, row: list[float], seconds: float = 5.0, model: str = NAME
) -> float:
    """Predicts a second that four back-to-back SDK clients get answered."""
    done = [0] * 4
    stop = time.perf_counter() + seconds

    def run(i: int) -> None:
        sdk = MaaS(settings)
        try:
            while time.perf_counter() < stop:
                sdk.predict(model, [row])
                done[i] += 1
        finally:
            sdk.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def _chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    windows = result["windows"]
    t = [w["t_s"] / 60 for w in windows]
    fig, axes = plt.subplots(3, 1, figsize=(10, 9), sharex=True)
    axes[0].plot(t, [w["success_pct"] for w in windows], color="#2ca02c")
    axes[0].set_ylabel("success %")
    axes[1].plot(t, [w["p99_ms"] for w in windows], color="#d62728", label="p99")
    axes[1].plot(t, [w["p50_ms"] for w in windows], color="#1f77b4", label="p50")
    axes[1].set_ylabel("latency, ms")
    axes[1].legend(fontsize=8)
    axes[2].plot(t, [w["replicas_mb"] for w in windows], label="the model's replicas")
    axes[2].plot(t, [w["platform_mb"] for w in windows], label="the whole platform")
    axes[2].set_ylabel("resident memory, MiB")
    axes[2].legend(fontsize=8)
    axes[2].set_xlabel("minutes")
    for ax in axes:
        for kill in result["kills"]:
            ax.axvline(kill["t_s"] / 60, color="#888888", linestyle=":", linewidth=1)
    fig.suptitle(
        f"soak: {result['rate']:.0f} predicts/s (half of {result['capacity']:.0f}), "
        f"a replica SIGKILLed every {result['kill_every_s']:.0f} s (dotted)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--kill-every", type=float, default=120.0, help="seconds")
    args = parser.parse_args()
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    console = Console()
    x, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x, y)
    row = [float(v) for v in x[0]]
    settings = bench_settings("soak", 600)
    duration = args.minutes * 60
    with running(settings, console) as bar:
        client = MaaS(settings)
        version = client.register(NAME, model, input_example=x[:1]).version
        client.deploy(NAME, version, num_replicas=2, num_cpus=0.5)
        most = capacity(settings, row)
        rate = most / 2
        load = Load(settings, rate, row)
        task = bar.add_task(f"soak at {rate:.0f} predicts/s", total=duration)
        windows, kills = [], []
        start = time.perf_counter()
        next_kill = args.kill_every
        with load:
            for i in range(1, int(duration // WINDOW_S) + 1):
                time.sleep(max(0.0, start + i * WINDOW_S - time.perf_counter()))
                now = time.perf_counter() - start
                if next_kill <= now < duration:
                    victim = _replicas(settings)[0]
                    os.kill(int(victim["pid"]), signal.SIGKILL)
                    kills.append({"t_s": round(now, 1), "replica": victim["replica_id"]})
                    next_kill += args.kill_every
                rows = load.between(start + now - WINDOW_S, start + now)
                took = [r[1] * 1000 for r in rows]
                pids = [int(r["pid"]) for r in _replicas(settings) if r.get("pid")]
                windows.append(
                    {
                        "t_s": round(now, 1),
                        "sent": len(rows),
                        "failed": sum(1 for r in rows if r[2] is not None),
                        "success_pct": 100.0 * sum(r[2] is None for r in rows) / max(len(rows), 1),
                        "p50_ms": float(np.percentile(took, 50)) if took else 0.0,
                        "p99_ms": float(np.percentile(took, 99)) if took else 0.0,
                        "replicas_mb": _rss_mb(pids),
                        "platform_mb": _rss_mb(_platform_pids(settings)),
                    }
                )
                bar.update(task, completed=min(now, duration))
    records = load.records
    took_all = [r[1] * 1000 for r in records]
    # p99 over the 20 s after each kill (the replacement starting) against the rest.
    after_kill = [
        r[1] * 1000 for r in records if any(0 <= r[0] - start - k["t_s"] < 20 for k in kills)
    ]
    calm = [
        r[1] * 1000 for r in records if not any(0 <= r[0] - start - k["t_s"] < 20 for k in kills)
    ]
    result = {
        "capacity": most,
        "rate": rate,
        "minutes": args.minutes,
        "kill_every_s": args.kill_every,
        "sent": len(records),
        "failed": sum(1 for r in records if r[2] is not None),
        "success_pct": 100.0 * sum(r[2] is None for r in records) / max(len(records), 1),
        "p99_ms": float(np.percentile(took_all, 99)),
        "p99_after_kill_ms": float(np.percentile(after_kill, 99)) if after_kill else None,
        "p99_calm_ms": float(np.percentile(calm, 99)) if calm else None,
        "errors": [r[2] for r in records if r[2] is not None][:10],
        "kills": kills,
        "windows": windows,
    }
    table = Table(
        title=f"soak: {rate:.0f} predicts/s, a replica killed every {args.kill_every:.0f} s"
    )
    for column in ("minute", "sent", "failed", "p50 ms", "p99 ms", "replicas MiB", "platform MiB"):
        table.add_column(column, justify="right")
    per_minute = max(1, int(60 // WINDOW_S))
    for j in range(0, len(windows), per_minute):
        group = windows[j : j + per_minute]
        table.add_row(
            f"{group[-1]['t_s'] / 60:.1f}",
            str(sum(w["sent"] for w in group)),
            str(sum(w["failed"] for w in group)),
            f"{max(w['p50_ms'] for w in group):.1f}",
            f"{max(w['p99_ms'] for w in group):.1f}",
            f"{group[-1]['replicas_mb']:.0f}",
            f"{group[-1]['platform_mb']:.0f}",
        )
    console.print(table)
    console.print(
        f"{result['sent']} predicts, {result['failed']} failed "
        f"({result['success_pct']:.3f}% answered); p99 {result['p99_ms']:.1f} ms overall; "
        f"{len(kills)} replicas killed"
    )
    if after_kill and calm:
        console.print(
            f"p99 in the 20 s after each kill {result['p99_after_kill_ms']:.1f} ms, "
            f"otherwise {result['p99_calm_ms']:.1f} ms: "
            f"{result['p99_after_kill_ms'] / result['p99_calm_ms']:.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "soak.json").write_text(json.dumps(result, indent=1))
    _chart(result, RESULTS / "soak.png")
    console.print(f"wrote {RESULTS / 'soak.json'} and {RESULTS / 'soak.png'}")


if __name__ == "__main__":
    main()
