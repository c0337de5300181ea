"""How long lifecycle actions take with and without started workers kept in reserve.

Starts its own platform twice (temporary MAAS_HOME, ports apart from the defaults and
the tests): first with ``MAAS_WORKER_RESERVE=0`` (every replica starts a new worker
process: the baseline), then with the default reserve (serving/reserve.py). On each,
registers a small scikit-learn model with two versions and times, through the SDK,
``--rounds`` rounds of: deploy v1, canary v2 at 20%, promote v2, undeploy. Each of
the first three starts a replica; the undeploy starts none (a control). Prints the
median of each action per platform and the ratio. Stops each platform by process id.

    .venv/bin/python -m benchmarks.replica_start [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

from rich.console import Console
from rich.table import Table

from benchmarks._common import bench_settings, running
from maas_ray import MaaS

ACTIONS = ("deploy", "canary", "promote", "undeploy")


def _round(client: MaaS, name: str) -> dict[str, float]:
    """One round on a new model ``name``: each action's seconds."""
    from sklearn.dummy import DummyClassifier

    versions = []
    for label in ("a", "b"):
        model = DummyClassifier(strategy="constant", constant=label).fit([[0.0]], [label])
        versions.append(client.register(name, model, input_example=[[0.0]]).version)
    took = {}
    start = time.perf_counter()
    client.deploy(name, versions[0], num_cpus=0.25)
    took["deploy"] = time.perf_counter() - start
    start = time.perf_counter()
    client.canary(name, versions[1], 20)
    took["canary"] = time.perf_counter() - start
    start = time.perf_counter()
    client.promote(name, versions[1])
    took["promote"] = time.perf_counter() - start
    start = time.perf_counter()
    client.undeploy(name)
    took["undeploy"] = time.perf_counter() - start
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    console = Console()
    medians: dict[int, dict[str, float]] = {}
    # One MAAS_HOME for both: its Ray token is the one this process keeps (Ray loads it once).
    base = bench_settings("replica-start", 800)
    for reserve in (0, 2):
        settings = base.model_copy(update={"worker_reserve": reserve})
        with running(settings, console) as bar:
            task = bar.add_task(f"reserve {reserve}: rounds", total=args.rounds)
            client = MaaS(settings)
            rounds = []
            try:
                for i in range(args.rounds):
                    rounds.append(_round(client, f"start{reserve}-{i}"))
                    time.sleep(3)  # the reserve fills again, as between a user's actions
                    bar.advance(task)
            finally:
                client.close()
        medians[reserve] = {a: statistics.median(r[a] for r in rounds) for a in ACTIONS}
    table = Table(title=f"lifecycle actions through the SDK, median of {args.rounds} rounds")
    for column in ("action", "no reserve (s)", "reserve of 2 (s)", "ratio"):
        table.add_column(column, justify="left" if column == "action" else "right")
    for action in ACTIONS:
        base, new = medians[0][action], medians[2][action]
        table.add_row(action, f"{base:.2f}", f"{new:.2f}", f"{base / new:.2f}x")
    console.print(table)


if __name__ == "__main__":
    main()
