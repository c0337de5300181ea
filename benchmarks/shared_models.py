"""Shared mode with many models: correctness, cache-hit vs dedicated latency, cold loads.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults),
registers N small scikit-learn pipelines, deploys them all with ``mode: shared``
in one `apply`, and measures over real HTTP on 127.0.0.1:

- every model answers what the same pipeline predicts locally (N/N);
- cold load: the first request of each model (download, digest check, load);
- cache hit: requests to a few models the pool already holds (fewer than its LRU bound);
- dedicated: the same pipeline served by its own Serve application (the baseline).

Ratios are against the dedicated deployment measured in the same run. Stops the
platform by process id at the end.

    .venv/bin/python -m benchmarks.shared_models [--models 100] [--requests 300]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, percentiles_ms, running
from maas_ray import MaaS


def _pipelines(n: int) -> list[Any]:
    """n different small pipelines on iris (different rows, regularisation)."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        rows = rng.choice(len(X), size=90, replace=False)
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05 + i * 0.1, max_iter=300))
        out.append(model.fit(X[rows], y[rows]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--requests", type=int, default=300, help="per latency scenario")
    parser.add_argument("--hot", type=int, default=4, help="models in the cache-hit scenario")
    args = parser.parse_args()
    console = Console()
    settings = bench_settings("shared", 0, deploy_timeout_s=600)
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]])
    body = {"inputs": rows.tolist()}
    with running(settings, console) as bar:
        client = MaaS(settings)
        pipes = _pipelines(args.models)
        names = [f"bench-{i:03d}" for i in range(args.models)]
        task = bar.add_task("registering", total=args.models)
        for name, pipe in zip(names, pipes, strict=True):
            client.register(name, pipe, input_example=rows)
            client.promote(name, "1")
            bar.advance(task)
        task = bar.add_task("deploying (shared pool + 1 dedicated)", total=2)
        doc = [{"model": n, "alias": "production", "mode": "shared"} for n in names]
        client.apply({"kind": "MaasDeployments", "models": doc})
        bar.advance(task)
        client.register("bench-dedicated", pipes[0], input_example=rows)
        client.deploy("bench-dedicated", "1")
        bar.advance(task)

        http = httpx.Client(timeout=120, headers={"authorization": authorization(settings)})
        url = f"{settings.serve_url}/v1/models/{{}}/predict"
        correct = 0
        cold: list[float] = []
        task = bar.add_task("cold pass: every model once", total=args.models)
        for name, pipe in zip(names, pipes, strict=True):
            started = time.perf_counter()
            resp = http.post(url.format(name), json=body)
            cold.append(time.perf_counter() - started)
            expected = pipe.predict(rows).tolist()
            correct += resp.status_code == 200 and resp.json()["predictions"] == expected
            bar.advance(task)

        def timed(targets: list[str], label: str) -> list[float]:
            for t in targets:  # warm
                http.post(url.format(t), json=body).raise_for_status()
            samples = []
            task = bar.add_task(label, total=args.requests)
            for i in range(args.requests):
                started = time.perf_counter()
                http.post(url.format(targets[i % len(targets)]), json=body).raise_for_status()
                samples.append(time.perf_counter() - started)
                bar.advance(task)
            return samples

        hit = timed(names[: args.hot], f"cache hits ({args.hot} models)")
        dedicated = timed(["bench-dedicated"], "dedicated deployment")
        http.close()
        client.close()
    base = percentiles_ms(dedicated)[0]
    title = (
        f"shared mode, {args.models} models, 1 pool replica, LRU bound "
        f"{settings.shared_models_per_replica}; sequential requests over loopback"
    )
    table = Table(title=title)
    for col in ("scenario", "requests", "p50 ms", "p95 ms", "p50 / dedicated p50"):
        table.add_column(col)
    for label, samples in (
        ("dedicated deployment (baseline)", dedicated),
        (f"shared, cache hit ({args.hot} hot models)", hit),
        ("shared, cold load (first request per model)", cold),
    ):
        p50, p95 = percentiles_ms(samples)
        table.add_row(label, str(len(samples)), f"{p50:.1f}", f"{p95:.1f}", f"{p50 / base:.2f}x")
    console.print(table)
    console.print(f"models answering correctly: {correct}/{args.models}")


if __name__ == "__main__":
    main()
