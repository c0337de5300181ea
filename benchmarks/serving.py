"""Serving speed, side by side in one run: bare Starlette, `mlflow models serve`, maas_ray.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and
the tests), registers the four example models, and for each one loads the same
registered version into three servers, one at a time, on 127.0.0.1:

- bare Starlette: ``model.predict`` and nothing else (the ceiling);
- ``mlflow models serve`` with one worker (the peer to beat);
- maas_ray, deployed as ``deployments/models.yaml`` deploys it, with one fixed
  replica (mlflow has one worker); so minilm batches, the others do not.

Each gets the same single-row request from the same wrk load (threads,
connections, duration). Then, on maas_ray only:

- batching: ``minilm`` under 32 concurrent clients, with its batching and with
  ``max_batch_size 1``;
- autoscaling: ``min 1 / max 2`` replicas through a load step, replicas sampled
  every half second until it is back at one;
- cold start: ``maas deploy`` of a registered scikit-learn version (the CLI, as
  a user types it) until its first successful answer.

Prints the tables, writes ``benchmarks/results/serving.json`` and
``serving.png``, stops everything it started by process id.

    .venv/bin/python -m benchmarks.serving [--duration 10] [--models tabular,digits]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import yaml
from rich.console import Console
from rich.markdown import Markdown

from benchmarks._common import authorization, bench_settings, running
from benchmarks.load import LoadResult, run_load, wrk_path
from benchmarks.servers import bare_starlette, mlflow_serve
from examples._common import register
from maas_ray import MaaS, Settings
from maas_ray.control.serve_api import ServeAPI
from maas_ray.security.ray_token import dashboard_headers
from maas_ray.spec import MODEL_DEPLOYMENT, DeploymentFile

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
EXAMPLES = ("sentiment", "tabular", "digits", "minilm")
SERVERS = ("bare Starlette", "mlflow models serve", "maas_ray")
BASELINE = "mlflow models serve"
BATCH_CLIENTS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--models", default=",".join(EXAMPLES), help="comma-separated examples")
    parser.add_argument("--skip", default="", help="comma-separated: batching,autoscaling,cold")
    args = parser.parse_args()
    wrk_path()  # fail early, before minutes of set-up
    skip = set(filter(None, args.skip.split(",")))
    models = [m for m in args.models.split(",") if m]
    console = Console()
    settings = bench_settings("serving", 400)
    started = time.monotonic()
    results: dict[str, Any] = {
        "machine": _machine(),
        "load": {"tool": "wrk", "threads": 2, "connections": args.connections},
        "duration_s": args.duration,
        "ingress": settings.ingress,
        "serving": {},
    }
    with running(settings, console) as bar:
        client = MaaS(settings)
        specs = {s.model: s for s in _file_specs().models}
        task = bar.add_task("serving", total=len(models) * len(SERVERS))
        for name in models:
            bar.update(task, description=f"{name}: registering")
            results["serving"][name] = _compare(
                client, settings, name, specs[name], args, bar, task
            )
        if "batching" not in skip and "minilm" in models:
            bar.update(task, description="minilm: batching on/off")
            results["batching"] = _batching(client, specs["minilm"], args.duration)
        if "autoscaling" not in skip:
            bar.update(task, description="autoscaling: load step")
            results["autoscaling"] = _autoscaling(client, settings)
        if "cold" not in skip:
            bar.update(task, description="cold start")
            results["cold_start"] = _cold_start(client, settings)
    results["took_s"] = round(time.monotonic() - started, 1)
    _report(results, console)


def _compare(
    client: MaaS, settings: Settings, name: str, spec: Any, args: Any, bar: Any, task: Any
) -> dict[str, Any]:
    """One example in the three servers, one after the other."""
    module = importlib.import_module(f"examples.{name}.train")
    version = register(client, name, module.train()).version
    client.promote(name, version)
    # One fixed replica against mlflow's one worker; the rest as models.yaml has it.
    fixed = {"model", "version", "alias", "min_replicas", "max_replicas"}
    options = {**spec.model_dump(exclude=fixed, exclude_none=True), "num_replicas": 1}
    client.deploy(name, alias="production", **options)
    body = json.dumps({"inputs": module.SAMPLE_INPUTS[:1]}).encode()
    uri = f"models:/{name}/{version}"
    log = settings.run_dir / f"bench-{name}.log"
    runs: dict[str, Any] = {}
    answers: dict[str, Any] = {}
    for server in SERVERS:
        bar.update(task, description=f"{name}: {server}")
        if server == "maas_ray":
            url = f"{settings.serve_url}/v1/models/{name}/predict"
            answers[server], runs[server] = _measure(url, body, args, settings)
        elif server == BASELINE:
            with mlflow_serve(uri, settings.mlflow_uri, settings.serve_port + 50, log) as url:
                answers[server], runs[server] = _measure(url, body, args, settings)
        else:
            with bare_starlette(uri, settings.mlflow_uri, settings.serve_port + 51, log) as url:
                answers[server], runs[server] = _measure(url, body, args, settings)
        bar.advance(task)
    return {
        "version": version,
        "spec": options,
        "same_answer": _same(answers["maas_ray"], answers[BASELINE]),
        "runs": {k: v.model_dump() for k, v in runs.items()},
    }


def _measure(url: str, body: bytes, args: Any, settings: Settings) -> tuple[Any, LoadResult]:
    """The server's answer to ``body``, then a warm-up and the measured load run.

    Every server gets the same request, the maas_ray key included (the baselines
    ignore it), so maas_ray's figure includes checking the key.
    """
    key = authorization(settings)
    headers = {"content-type": "application/json", "authorization": key}
    answer = httpx.post(url, content=body, headers=headers, timeout=60)
    answer.raise_for_status()
    run_load(url, body, args.connections, 2, authorization=key)
    measured = run_load(url, body, args.connections, args.duration, authorization=key)
    return answer.json()["predictions"], measured


def _same(a: Any, b: Any) -> bool:
    """Equal answers: labels exactly; floats (embeddings) within float32 noise.

    The two servers encode float32 outputs apart; ``np.allclose``'s default absolute
    tolerance (1e-8) is below float32's resolution, so it called 9e-8 a difference.
    """
    import numpy as np

    try:
        x, y = np.asarray(a), np.asarray(b)
    except (TypeError, ValueError):
        return bool(a == b)
    if x.dtype.kind in "fc" or y.dtype.kind in "fc":
        try:
            both = x.astype(np.float64), y.astype(np.float64)
        except (TypeError, ValueError):
            return bool(a == b)
        return x.shape == y.shape and bool(np.allclose(*both, rtol=1e-5, atol=1e-6))
    return bool(a == b)


def _batching(client: MaaS, spec: Any, duration_s: float) -> dict[str, Any]:
    """minilm under BATCH_CLIENTS concurrent single-sentence clients, batching on and off."""
    module = importlib.import_module("examples.minilm.train")
    body = json.dumps({"inputs": module.SAMPLE_INPUTS[:1]}).encode()
    url = f"{client.settings.serve_url}/v1/models/minilm/predict"
    options = spec.model_dump(exclude={"model", "version", "alias"}, exclude_none=True)
    out: dict[str, Any] = {"clients": BATCH_CLIENTS}
    for label, batching in (
        ("max_batch_size 1", {**options["batching"], "max_batch_size": 1}),
        (f"max_batch_size {options['batching']['max_batch_size']}", options["batching"]),
    ):
        client.deploy("minilm", alias="production", **{**options, "batching": batching})
        key = authorization(client.settings)
        run_load(url, body, BATCH_CLIENTS, 2, authorization=key)
        out[label] = run_load(url, body, BATCH_CLIENTS, duration_s, authorization=key).model_dump()
    return out


def _replicas(serve: ServeAPI, app: str) -> int:
    deployments = serve.applications().get(app, {}).get("deployments", {})
    replicas = deployments.get(MODEL_DEPLOYMENT, {}).get("replicas", [])
    return sum(1 for r in replicas if r.get("state") == "RUNNING")


def _autoscaling(client: MaaS, settings: Settings) -> dict[str, Any]:
    """A load step against min 1 / max 2 replicas; replicas over time until back at 1."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    X = X.astype("float32")
    client.register("autoscale", LogisticRegression(max_iter=300).fit(X, y), input_example=X[:2])
    policy = {
        "min_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 2.0,
        "upscale_delay_s": 3.0,
        "downscale_delay_s": 10.0,
    }
    client.deploy("autoscale", version="1", **policy)
    url = f"{settings.serve_url}/v1/models/autoscale/predict"
    body = json.dumps({"inputs": X[:1].tolist()}).encode()
    serve = ServeAPI(settings.dashboard_url, headers=dashboard_headers(settings))
    samples: list[tuple[float, int]] = []
    t0 = time.monotonic()
    load_s, connections = 30.0, 16
    key = authorization(settings)
    loader = threading.Thread(
        target=lambda: run_load(url, body, connections, load_s, authorization=key)
    )
    loader.start()
    while True:
        now = time.monotonic() - t0
        samples.append((round(now, 1), _replicas(serve, "autoscale")))
        peaked = max(n for _, n in samples) > 1
        if now > load_s and (samples[-1][1] == 1 and peaked or now > load_s + 90):
            break
        time.sleep(0.5)
    loader.join()
    up = next((t for t, n in samples if n > 1), None)
    down = next((t for t, n in samples if up is not None and t > max(up, load_s) and n == 1), None)
    client.undeploy("autoscale")
    return {
        "policy": policy,
        "load": {"start_s": 0, "end_s": load_s, "connections": connections},
        "samples": samples,
        "peak_replicas": max(n for _, n in samples),
        "scaled_up_at_s": up,
        "back_to_one_at_s": down,
    }


def _cold_start(client: MaaS, settings: Settings) -> dict[str, Any]:
    """Deploy of a registered scikit-learn version until its first 200, two ways.

    ``cli``: ``maas deploy`` typed in a shell (includes starting the CLI, ~0.6 s);
    ``sdk``: ``MaaS.deploy`` from a running Python process. Two rounds each, in the
    order cli, sdk, sdk, cli (the first deploy of a session is the slowest), and the
    median of the two is the figure. Each round also records who gave the first
    answer (the warm shared pool, or the model's own replica) and when the deploy
    returned, which is when the model's own replica runs.
    """
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    X, y = load_wine(return_X_y=True)
    X = X.astype("float32")
    model = LogisticRegression(max_iter=2000).fit(X, y)
    client.register("coldstart", model, input_example=X[:2])
    url = f"{settings.serve_url}/v1/models/coldstart/predict"
    body = json.dumps({"inputs": X[:1].tolist()}).encode()
    cmd = [str(Path(sys.executable).parent / "maas"), "deploy", "coldstart", "--version", "1"]
    env = {**os.environ, **settings.as_env()}
    runs: dict[str, list[float | None]] = {"cli": [], "sdk": []}
    ready: dict[str, list[float]] = {"cli": [], "sdk": []}
    first_by: dict[str, list[str | None]] = {"cli": [], "sdk": []}
    for how in ("cli", "sdk", "sdk", "cli"):
        t0 = time.monotonic()
        if how == "cli":
            proc = subprocess.Popen(
                cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            done = proc.wait
        else:
            thread = threading.Thread(target=lambda: client.deploy("coldstart", version="1"))
            thread.start()
            done = thread.join
        taken, by = _first_answer(url, body, t0, authorization(settings))
        runs[how].append(taken)
        first_by[how].append(by)
        done()
        ready[how].append(round(time.monotonic() - t0, 2))
        client.undeploy("coldstart")
    out: dict[str, Any] = {f"{how}_runs_s": taken for how, taken in runs.items()}
    for how, taken in runs.items():
        answered = [t for t in taken if t is not None]
        out[f"{how}_s"] = round(statistics.median(answered), 2) if answered else None
        out[f"{how}_first_answer_by"] = first_by[how]
        out[f"{how}_replica_ready_runs_s"] = ready[how]
        out[f"{how}_replica_ready_s"] = round(statistics.median(ready[how]), 2)
    return out


def _first_answer(url: str, body: bytes, t0: float, key: str) -> tuple[float | None, str | None]:
    """Seconds from ``t0`` to the first 200 from ``url``, and who answered it.

    (None, None): no answer within 120 s. Who: ``shared-pool`` or ``replica``.
    """
    headers = {"content-type": "application/json", "authorization": key}
    with httpx.Client(timeout=5, headers=headers) as http:
        while time.monotonic() - t0 < 120:
            try:
                resp = http.post(url, content=body)
                if resp.status_code == 200:
                    by = resp.headers.get("x-maas-served-by", "replica")
                    return round(time.monotonic() - t0, 2), by
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return None, None


def _file_specs() -> DeploymentFile:
    return DeploymentFile.model_validate(
        yaml.safe_load((ROOT / "deployments" / "models.yaml").read_text())
    )


def _machine() -> dict[str, Any]:
    return {
        "cpus": psutil.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30),
        "python": platform.python_version(),
        "system": platform.platform(),
    }


def _report(results: dict[str, Any], console: Console) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "serving.json").write_text(json.dumps(results, indent=2))
    text = markdown(results)
    (RESULTS / "serving.md").write_text(text)
    console.print(Markdown(text))  # the same tables on the terminal as in the file
    from benchmarks.chart import draw

    draw(results, RESULTS / "serving.png")
    console.print(f"took {results['took_s']:.0f}s; results in {RESULTS}/serving.json and .png")


def markdown(results: dict[str, Any]) -> str:
    """The run's tables as Markdown, for benchmarks/README.md."""
    m = results["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['memory_gib']} GiB, Python {m['python']}, "
        f"{m['system']}; wrk {results['load']['threads']} threads, "
        f"{results['load']['connections']} connections, {results['duration_s']:g} s per "
        f"run; ingress {results['ingress']}; whole run {results['took_s']:.0f} s.",
        "",
        "| model | server | req/s | p50 ms | p95 ms | p99 ms | errors | vs mlflow |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results["serving"].items():
        base = entry["runs"][BASELINE]["rps"]
        for server in SERVERS:
            run = LoadResult.model_validate(entry["runs"][server])
            lines.append(
                f"| {name} | {server} | " + " | ".join(run.row()) + f" | {run.rps / base:.2f}x |"
            )
        if not entry["same_answer"]:
            lines.append(f"| {name} | maas_ray and mlflow answers differ | | | | | | |")
    if "batching" in results:
        b = results["batching"]
        runs = {k: LoadResult.model_validate(v) for k, v in b.items() if k != "clients"}
        base = runs["max_batch_size 1"].rps
        lines += [
            "",
            f"minilm, {b['clients']} concurrent single-sentence clients:",
            "",
            "| deployment | req/s | p50 ms | p95 ms | p99 ms | errors | vs batch 1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for label, run in runs.items():
            lines.append(f"| {label} | " + " | ".join(run.row()) + f" | {run.rps / base:.2f}x |")
    if "autoscaling" in results:
        a = results["autoscaling"]
        changes = ", ".join(f"{t:g} s: {n}" for t, n in _changes(a["samples"]))
        lines += [
            "",
            f"Autoscaling 1-2 replicas, {a['load']['connections']} connections for "
            f"{a['load']['end_s']:.0f} s: peak {a['peak_replicas']} replicas, scaled up at "
            f"{a['scaled_up_at_s']} s, back to 1 at {a['back_to_one_at_s']} s "
            f"(running replicas: {changes}).",
        ]
    if "cold_start" in results:
        c = results["cold_start"]
        lines += [
            "",
            f"Cold start to the first answer (median of 2): `maas deploy` {c['cli_s']} s "
            f"(runs {c['cli_runs_s']}, answered by {c['cli_first_answer_by']}), "
            f"`MaaS.deploy()` {c['sdk_s']} s (runs {c['sdk_runs_s']}, answered by "
            f"{c['sdk_first_answer_by']}). The model's own replica running (the deploy "
            f"returned): `maas deploy` {c['cli_replica_ready_s']} s, `MaaS.deploy()` "
            f"{c['sdk_replica_ready_s']} s.",
        ]
    return "\n".join(lines) + "\n"


def _changes(samples: list[list[float]]) -> list[tuple[float, int]]:
    """The samples where the replica count changed (and the first and last)."""
    out = []
    for i, (t, n) in enumerate(samples):
        if i == 0 or i == len(samples) - 1 or n != samples[i - 1][1]:
            out.append((t, int(n)))
    return out


if __name__ == "__main__":
    main()
