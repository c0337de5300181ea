"""The same predictions over the v1 route and the Open Inference Protocol v2, same run.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and the
tests), registers and serves the ``tabular`` example, then loads it with wrk (same
connections and duration each) with the same rows as:

- v1: ``POST /v1/models/tabular/predict`` ``{"inputs": [[...]]}`` (the baseline);
- v2 JSON: ``POST /v2/models/tabular/infer`` with a JSON FP32 tensor;
- v2 binary: the same tensor as raw bytes after the JSON header (Triton's default);
- then, with a Python client for both (``benchmarks/pyload.py``: wrk speaks no gRPC),
  v2 binary over REST again and v2 over gRPC (``ModelInfer``, raw bytes): their ratio
  is gRPC's against REST with the same kind of client.

v2 goes through the gateway (``/v2`` is outside every model's route prefix) and on to
the model's replica over a Serve handle: one hop more than v1, which the ratios show.
Phases alternate in rounds so that drift of the machine hits all of them alike. Stops
the platform by process id at the end.

    .venv/bin/python -m benchmarks.protocols [--rows 1] [--connections 8] [--seconds 8]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, running
from benchmarks.load import LoadResult, run_load
from benchmarks.pyload import grpc_load, http_load
from examples._common import register
from maas_ray import MaaS


def bodies(rows: np.ndarray) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Each phase's request body and extra headers, for the same ``rows``."""
    tensor = {"name": "input-0", "shape": list(rows.shape), "datatype": "FP32"}
    header = json.dumps(
        {"inputs": [{**tensor, "parameters": {"binary_data_size": rows.nbytes}}]}
    ).encode()
    return {
        "v1": (json.dumps({"inputs": rows.tolist()}).encode(), {}),
        "v2 JSON": (
            json.dumps({"inputs": [{**tensor, "data": rows.ravel().tolist()}]}).encode(),
            {},
        ),
        "v2 binary": (
            header + rows.astype("<f4").tobytes(),
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
            },
        ),
    }


def grpc_request(rows: np.ndarray) -> Any:
    """The gRPC phase's ModelInferRequest: the same rows as raw FP32 bytes."""
    from maas_ray.serving.proto import predict_v2_pb2 as pb

    tensor = pb.ModelInferRequest.InferInputTensor(
        name="input-0", datatype="FP32", shape=list(rows.shape)
    )
    return pb.ModelInferRequest(
        model_name="tabular", inputs=[tensor], raw_input_contents=[rows.astype("<f4").tobytes()]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=8.0, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    from examples.tabular.train import train

    console = Console()
    settings = bench_settings("protocols", 500)
    results: dict[str, list[LoadResult]] = defaultdict(list)
    with running(settings, console) as bar:
        client = MaaS(settings)
        example = train()
        rows = np.resize(np.asarray(example.input_example, dtype=np.float32), (args.rows, 30))
        version = register(client, "tabular", example).version
        client.deploy("tabular", version)
        urls = {
            "v1": f"{settings.serve_url}/v1/models/tabular/predict",
            "v2 JSON": f"{settings.serve_url}/v2/models/tabular/infer",
            "v2 binary": f"{settings.serve_url}/v2/models/tabular/infer",
        }
        phases = bodies(rows)
        task = bar.add_task("load", total=args.rounds * len(phases))
        key = authorization(settings)
        for _ in range(args.rounds):
            for phase, (body, headers) in phases.items():
                run_load(
                    urls[phase], body, args.connections, 2.0, authorization=key, headers=headers
                )
                results[phase].append(
                    run_load(
                        urls[phase],
                        body,
                        args.connections,
                        args.seconds,
                        authorization=key,
                        headers=headers,
                    )
                )
                bar.advance(task)
        python = _python_phases(settings, rows, urls["v2 binary"], phases["v2 binary"], key)
        task = bar.add_task("load (Python clients)", total=args.rounds * len(python))
        for _ in range(args.rounds):
            for phase, drive in python.items():
                drive(args.connections, 2.0)
                results[phase].append(drive(args.connections, args.seconds))
                bar.advance(task)
    table = Table(title=f"tabular, {args.rows} row(s) a request, {args.connections} connections")
    for column in ("protocol", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s vs v1"):
        table.add_column(column, justify="right" if column != "protocol" else "left")
    base = max(r.rps for r in results["v1"])
    for phase, runs in results.items():
        best = max(runs, key=lambda r: r.rps)
        table.add_row(phase, *best.row(), f"{best.rps / base:.2f}x")
    console.print(table)
    rest = max(r.rps for r in results[PY_REST])
    grpc_best = max(r.rps for r in results[PY_GRPC])
    console.print(f"gRPC vs REST (v2 binary, same Python client): {grpc_best / rest:.2f}x req/s")


PY_REST = "v2 binary, Python client"
PY_GRPC = "v2 gRPC, Python client"


def _python_phases(
    settings: Any, rows: np.ndarray, url: str, rest: tuple[bytes, dict[str, str]], key: str
) -> dict[str, Callable[[int, float], LoadResult]]:
    from maas_ray.spec import GATEWAY_APP

    body, extra = rest
    headers = {**extra, "Authorization": key}
    target = f"{settings.host}:{settings.grpc_port}"
    metadata = [("application", GATEWAY_APP), ("authorization", key)]
    request = grpc_request(rows)
    return {
        PY_REST: lambda n, s: http_load(url, body, headers, n, s),
        PY_GRPC: lambda n, s: grpc_load(target, request, metadata, n, s),
    }


if __name__ == "__main__":
    main()
