"""What slow management actions cost the data plane: latency idle vs while deploys run.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults),
registers a model served by the shared pool and three models to deploy, and times
three probes over real HTTP on 127.0.0.1, one after another, in two phases:

- idle: nothing being deployed (the baseline);
- busy: three deploys queued at once through the management API (each on its own
  replica, so each takes the seconds a replica needs to start and load), probed
  until the last one is done; then the three undeploys, probed the same way.

The probes: a predict for an unknown model (the gateway's JSON 404), a predict the
shared pool answers, and ``GET /v1/admin/status``. It also reports how long each
management call took to answer (202 with an operation) while its action ran on.
Stops the platform by process id at the end.

    .venv/bin/python -m benchmarks.management [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, percentiles_ms, running
from maas_ray import MaaS
from maas_ray.control.status import Operation
from maas_ray.routes import url

NAMES = [f"slow{i}" for i in range(3)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="deploy+undeploy rounds")
    parser.add_argument("--idle", type=int, default=60, help="idle probes per round")
    args = parser.parse_args()
    from sklearn.dummy import DummyClassifier

    console = Console()
    settings = bench_settings("management", 300)
    samples: dict[tuple[str, str], list[float]] = defaultdict(list)
    calls: dict[str, list[float]] = defaultdict(list)
    with running(settings, console) as bar:
        client = MaaS(settings)
        model = DummyClassifier(strategy="constant", constant=1).fit([[0.0]], [1])
        for name in [*NAMES, "pooled"]:
            client.register(name, model, input_example=[[0.0]])
        client.deploy("pooled", mode="shared")
        headers = {"authorization": authorization(settings)}
        with httpx.Client(base_url=settings.serve_url, headers=headers, timeout=60) as http:
            probes: dict[str, Callable[[], httpx.Response]] = {
                "unknown model 404": lambda: http.post(
                    url("predict", name="nosuch"), json={"inputs": [[0.0]]}
                ),
                "shared-pool predict": lambda: http.post(
                    url("predict", name="pooled"), json={"inputs": [[0.0]]}
                ),
                "management status": lambda: http.get(url("status")),
            }

            def probe(phase: str) -> None:
                for what, call in probes.items():
                    started = time.perf_counter()
                    resp = call()
                    samples[(phase, what)].append(time.perf_counter() - started)
                    assert resp.status_code in (200, 404), (what, resp.status_code, resp.text)

            task = bar.add_task("probing", total=args.rounds * 3)
            for _ in range(args.rounds):
                for _ in range(args.idle):
                    probe("idle")
                bar.advance(task)
                for action in ("deploy", "undeploy"):
                    ops: list[Operation] = []
                    for name in NAMES:
                        started = time.perf_counter()
                        if action == "deploy":
                            op = client.deploy(name, num_cpus=0, wait=False)
                        else:
                            op = client.undeploy(name, wait=False)
                        calls[action].append(time.perf_counter() - started)
                        ops.append(op)
                    while not all(o.done for o in ops):
                        probe("busy")
                        ops = [client.operation(o.id) for o in ops]
                    assert all(o.state == "succeeded" for o in ops), ops
                    bar.advance(task)
        client.close()
    table = Table(title="data-plane latency, sequential probes over loopback: idle vs busy")
    for col in (
        "probe",
        "idle n",
        "idle p50 ms",
        "idle p95 ms",
        "busy n",
        "busy p50 ms",
        "busy p95 ms",
        "busy p95 / idle p95",
    ):
        table.add_column(col)
    for what in probes:
        idle, busy = samples[("idle", what)], samples[("busy", what)]
        i50, i95 = percentiles_ms(idle)
        b50, b95 = percentiles_ms(busy)
        table.add_row(
            what,
            str(len(idle)),
            f"{i50:.1f}",
            f"{i95:.1f}",
            str(len(busy)),
            f"{b50:.1f}",
            f"{b95:.1f}",
            f"{b95 / i95:.2f}x",
        )
    console.print(table)
    answers = Table(title="management calls: time to the 202 (the action runs on)")
    for col in ("call", "n", "p50 ms", "max ms"):
        answers.add_column(col)
    for action, took in calls.items():
        p50, _ = percentiles_ms(took)
        answers.add_row(action, str(len(took)), f"{p50:.0f}", f"{max(took) * 1000:.0f}")
    console.print(answers)


if __name__ == "__main__":
    main()
