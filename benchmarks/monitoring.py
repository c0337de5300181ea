"""What monitoring costs a served model: req/s and p99 with the prediction log at 0%,
the default 10%, and 100% of predictions, in the same run.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and
the tests), registers a scikit-learn pipeline on breast_cancer (the shape of the
``tabular`` example: 30 numbers per row, one row per request), serves it with one
fixed replica and loads it with wrk over 127.0.0.1 at each share in turn, in
rounds, so drift of the machine hits every share alike. 0% still counts every
answer (requests, errors, latencies); it logs no inputs or answers. Stops the
platform by process id at the end.

    .venv/bin/python -m benchmarks.monitoring [--duration 10] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections import defaultdict

from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, running
from benchmarks.load import LoadResult, run_load, wrk_path
from maas_ray import MaaS

SHARES = (0.0, 10.0, 100.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    wrk_path()
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    console = Console()
    settings = bench_settings("monitoring", 200)
    X, y = load_breast_cancer(return_X_y=True)
    body = json.dumps({"inputs": X[:1].tolist()}).encode()
    results: dict[float, list[LoadResult]] = defaultdict(list)
    with running(settings, console) as bar:
        client = MaaS(settings)
        pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)
        client.register("monitored", pipe, input_example=X[:2].tolist())
        url = f"{settings.serve_url}/v1/models/monitored/predict"
        task = bar.add_task("load runs", total=args.rounds * len(SHARES))
        for _ in range(args.rounds):
            for share in SHARES:
                client.deploy("monitored", "1", num_replicas=1, log_percent=share)
                run_load(url, body, args.connections, 3.0, authorization=authorization(settings))
                result = run_load(
                    url,
                    body,
                    args.connections,
                    args.duration,
                    authorization=authorization(settings),
                )
                results[share].append(result)
                bar.advance(task)
        client.close()
    base = statistics.median(r.rps for r in results[0.0])
    table = Table(
        title=f"one replica, 1 row per request, wrk {args.connections} connections, "
        f"{args.duration:g} s x {args.rounds} rounds (median)"
    )
    for col in ("predictions logged", "req/s", "p50 ms", "p99 ms", "req/s vs 0%"):
        table.add_column(col)
    for share in SHARES:
        rps = statistics.median(r.rps for r in results[share])
        p50 = statistics.median(r.p50_ms for r in results[share])
        p99 = statistics.median(r.p99_ms for r in results[share])
        table.add_row(
            f"{share:g}%", f"{rps:,.0f}", f"{p50:.2f}", f"{p99:.2f}", f"{rps / base:.2f}x"
        )
    console.print(table)


if __name__ == "__main__":
    main()
