"""What a shadow or a canary costs the caller: latency with and without, same run.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults),
registers two versions of a scikit-learn pipeline, serves version 1, and times
sequential requests over real HTTP on 127.0.0.1 in three phases:

- plain: version 1 alone (the baseline);
- shadow: version 2 gets every request mirrored; callers still get version 1;
- canary 50%: requests answered by version 2 take one extra handle hop.

Phases alternate in rounds so that drift of the machine hits all of them alike.
Stops the platform by process id at the end.

    .venv/bin/python -m benchmarks.traffic [--requests 400] [--rounds 3]
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import httpx
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, percentiles_ms, running
from maas_ray import MaaS
from maas_ray.control.status import ShadowAgreement


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    console = Console()
    settings = bench_settings("traffic", 100)
    X, y = load_iris(return_X_y=True, as_frame=True)
    body = {"dataframe_split": X.head(1).to_dict(orient="split")}
    samples: dict[str, list[float]] = defaultdict(list)
    agreement = ShadowAgreement()
    with running(settings, console) as bar:
        client = MaaS(settings)
        for c in (1.0, 0.01):
            pipe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=300))
            client.register("traffic", pipe.fit(X, y), input_example=X.head(2))
        client.promote("traffic", "1")
        client.deploy("traffic", alias="production")
        url = f"{settings.serve_url}/v1/models/traffic/predict"
        phases = ("plain", "shadow", "canary 50%")
        task = bar.add_task("timing", total=args.rounds * len(phases) * args.requests)
        with httpx.Client(timeout=60, headers={"authorization": authorization(settings)}) as http:
            for _ in range(args.rounds):
                for phase in phases:
                    if phase == "shadow":
                        client.shadow("traffic", "2", 100)
                    elif phase.startswith("canary"):
                        client.canary("traffic", "2", 50)
                    for _ in range(20):  # warm up after the switch
                        http.post(url, json=body)
                    for _ in range(args.requests):
                        started = time.perf_counter()
                        r = http.post(url, json=body)
                        took = time.perf_counter() - started
                        r.raise_for_status()
                        version = r.headers["x-maas-model-version"]
                        key = phase if phase != "canary 50%" else f"canary: v{version}"
                        samples[key].append(took)
                        bar.advance(task)
                    if phase == "shadow":
                        time.sleep(0.5)  # the last mirrored batch
                        agreement = client.traffic("traffic").agreement or agreement
                    if phase != "plain":
                        client.rollback("traffic")
        client.close()
    base_ms = percentiles_ms(samples["plain"])[0]
    table = Table(title="caller latency, sequential requests over loopback (1 row, sklearn)")
    for col in ("phase", "requests", "p50 ms", "p95 ms", "p50 / plain p50"):
        table.add_column(col)
    for key in ("plain", "shadow", "canary: v1", "canary: v2"):
        if not samples[key]:
            continue
        p50, p95 = percentiles_ms(samples[key])
        table.add_row(
            key, str(len(samples[key])), f"{p50:.2f}", f"{p95:.2f}", f"{p50 / base_ms:.2f}x"
        )
    console.print(table)
    console.print(
        f"shadow (last round): {agreement.requests} requests mirrored, "
        f"{agreement.agree}/{agreement.rows} rows agree, {agreement.errors} errors, "
        f"{agreement.dropped} dropped"
    )


if __name__ == "__main__":
    main()
