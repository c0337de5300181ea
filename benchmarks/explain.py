"""Explanations beside predicts: does explain traffic slow plain predicts down?

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and the
tests), registers two models on breast_cancer: the ``tabular`` example (a PyTorch MLP;
Captum's integrated gradients) and a scikit-learn gradient-boosting classifier (SHAP's
TreeExplainer), each with 100 background rows, one replica each. For each model, wrk
sends predicts from 8 connections for ``--seconds``, first alone, then with explain
clients beside it (back to back, one row each); the same run measures both, so the
ratio is the figure. Also: the first explain (which builds the explainer), and an
explain's latency against a predict's. Stops the platform by process id at the end.

    .venv/bin/python -m benchmarks.explain [--seconds 15] [--explainers 2]

Writes benchmarks/results/explain.json.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, percentiles_ms, running
from benchmarks.load import LoadResult, run_load
from maas_ray import MaaS, Settings

RESULTS = Path(__file__).with_name("results")
CONNECTIONS = 8


def _register(client: MaaS) -> dict[str, list[list[float]]]:
    """Both models, @production at the new version; their one-row request bodies."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import GradientBoostingClassifier

    from examples._common import register
    from examples.tabular import train as tabular

    x, y = load_breast_cancer(return_X_y=True)
    background = x[np.random.default_rng(0).choice(len(x), 100, replace=False)]
    version = register(client, "xtab", tabular.train()).version
    client.promote("xtab", version)
    trees = GradientBoostingClassifier(n_estimators=100, random_state=0).fit(x, y)
    version = client.register("xgbm", trees, input_example=x[:2], background=background).version
    client.promote("xgbm", version)
    return {"xtab": [x[0].astype(np.float32).tolist()], "xgbm": [x[0].tolist()]}


def _explainers(
    settings: Settings, name: str, body: dict[str, Any], n: int, stop: threading.Event
) -> list[float]:
    """``n`` clients explaining back to back until ``stop``; their latencies."""
    took: list[float] = []
    url = f"{settings.serve_url}/v1/models/{name}/explain"
    headers = {"authorization": authorization(settings)}

    def loop() -> None:
        with httpx.Client(timeout=120, headers=headers) as http:
            while not stop.is_set():
                started = time.perf_counter()
                resp = http.post(url, json=body)
                resp.raise_for_status()
                took.append(time.perf_counter() - started)

    threads = [threading.Thread(target=loop) for _ in range(n)]
    for thread in threads:
        thread.start()
    stop.wait()
    for thread in threads:
        thread.join(timeout=180)
    return took


def _one(settings: Settings, name: str, rows: list[list[float]], seconds: float, n: int) -> dict:
    body = {"inputs": rows}
    url = f"{settings.serve_url}/v1/models/{name}"
    headers = {"authorization": authorization(settings)}
    with httpx.Client(timeout=120, headers=headers) as http:
        started = time.perf_counter()
        http.post(f"{url}/explain", json=body).raise_for_status()
        first_s = time.perf_counter() - started
        predicts, explains = [], []
        for _ in range(50):
            started = time.perf_counter()
            http.post(f"{url}/predict", json=body).raise_for_status()
            predicts.append(time.perf_counter() - started)
            started = time.perf_counter()
            http.post(f"{url}/explain", json=body).raise_for_status()
            explains.append(time.perf_counter() - started)
    payload = json.dumps(body).encode()
    alone = run_load(
        f"{url}/predict", payload, CONNECTIONS, seconds, authorization=headers["authorization"]
    )
    stop = threading.Event()
    took: list[float] = []
    beside = threading.Thread(
        target=lambda: took.extend(_explainers(settings, name, body, n, stop))
    )
    beside.start()
    time.sleep(1.0)  # the explain clients are running before the predicts start
    try:
        shared = run_load(
            f"{url}/predict", payload, CONNECTIONS, seconds, authorization=headers["authorization"]
        )
    finally:
        stop.set()
        beside.join(timeout=300)
    return {
        "model": name,
        "first_explain_s": first_s,
        "predict_p50_ms": percentiles_ms(predicts)[0],
        "explain_p50_ms": percentiles_ms(explains)[0],
        "alone": _figures(alone),
        "with_explains": _figures(shared),
        "explains_beside": len(took),
        "explains_per_s": len(took) / (seconds + 1.0),
        "rps_ratio": shared.rps / alone.rps,
    }


def _figures(result: LoadResult) -> dict[str, float]:
    return {
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--explainers", type=int, default=2, help="explain clients beside")
    args = parser.parse_args()
    console = Console()
    settings = bench_settings("explain", 700)
    rows = []
    with running(settings, console) as bar:
        client = MaaS(settings)
        task = bar.add_task("register, deploy, measure", total=4)
        bodies = _register(client)
        bar.advance(task)
        for name in bodies:
            client.deploy(name, alias="production", num_replicas=1, num_cpus=1)
        bar.advance(task)
        for name, body in bodies.items():
            rows.append(_one(settings, name, body, args.seconds, args.explainers))
            bar.advance(task)
        client.close()
    table = Table(title=f"predicts (wrk, {CONNECTIONS} connections) alone and beside explains")
    for col in ("model", "first explain", "predict p50", "explain p50", "req/s alone",
                "req/s beside", "ratio", "p99 alone -> beside", "explains/s"):  # fmt: skip
        table.add_column(col)
    for r in rows:
        table.add_row(
            r["model"],
            f"{r['first_explain_s']:.2f} s",
            f"{r['predict_p50_ms']:.1f} ms",
            f"{r['explain_p50_ms']:.1f} ms",
            f"{r['alone']['rps']:.0f}",
            f"{r['with_explains']['rps']:.0f}",
            f"{r['rps_ratio']:.2f}",
            f"{r['alone']['p99_ms']:.1f} -> {r['with_explains']['p99_ms']:.1f} ms",
            f"{r['explains_per_s']:.1f}",
        )
    console.print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "explain.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
