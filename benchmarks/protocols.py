"""The same predictions over the v1 route and the Open Inference Protocol v2, same run.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and the
tests), registers and serves the ``tabular`` example, then loads it with wrk (same
connections and duration each) with the same rows as:

- v1: ``POST /v1/models/tabular/predict`` ``{"inputs": [[...]]}`` (the baseline);
- v2 JSON: ``POST /v2/models/tabular/infer`` with a JSON FP32 tensor;
- v2 binary: the same tensor as raw bytes after the JSON header (Triton's default);
- v2 gRPC: ``ModelInfer`` with the same tensor as raw bytes, loaded by h2load (wrk
  speaks no HTTP/2) with the same connections and duration; one call is checked with
  a gRPC client first, since h2load sees HTTP statuses only.

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
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from benchmarks._common import authorization, bench_settings, running
from benchmarks.load import LoadResult, grpc_frame, run_h2load, run_load
from examples._common import register
from maas_ray import MaaS
from maas_ray.spec import GATEWAY_APP


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
        key = authorization(settings)
        target = f"{settings.host}:{settings.grpc_port}"
        metadata = [("application", GATEWAY_APP), ("authorization", key)]
        request = grpc_request(rows)
        _check_grpc(target, request, metadata)
        grpc_url = f"http://{target}/inference.GRPCInferenceService/ModelInfer"
        grpc_body = grpc_frame(request.SerializeToString())
        grpc_headers = {"content-type": "application/grpc", "te": "trailers", **dict(metadata)}

        def load(phase: str, seconds: float) -> LoadResult:
            if phase == GRPC:
                return run_h2load(
                    grpc_url, grpc_body, args.connections, seconds, headers=grpc_headers
                )
            body, headers = phases[phase]
            return run_load(
                urls[phase], body, args.connections, seconds, authorization=key, headers=headers
            )

        phases = bodies(rows)
        names = [*phases, GRPC]
        task = bar.add_task("load", total=args.rounds * len(names))
        for _ in range(args.rounds):
            for phase in names:
                load(phase, 2.0)  # warm-up
                results[phase].append(load(phase, args.seconds))
                bar.advance(task)
    table = Table(title=f"tabular, {args.rows} row(s) a request, {args.connections} connections")
    for column in ("protocol", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "req/s vs v1"):
        table.add_column(column, justify="right" if column != "protocol" else "left")
    base = max(r.rps for r in results["v1"])
    for phase, runs in results.items():
        best = max(runs, key=lambda r: r.rps)
        table.add_row(phase, *best.row(), f"{best.rps / base:.2f}x")
    console.print(table)
    rest = max(r.rps for r in results["v2 binary"])
    grpc_best = max(r.rps for r in results[GRPC])
    console.print(f"gRPC vs REST (v2, raw bytes both ways): {grpc_best / rest:.2f}x req/s")


GRPC = "v2 gRPC (h2load)"


def _check_grpc(target: str, request: Any, metadata: list[tuple[str, str]]) -> None:
    """One ModelInfer through a gRPC client: the load's body is answered, not refused."""
    import grpc

    from maas_ray.serving.proto import predict_v2_pb2_grpc

    with grpc.insecure_channel(target) as channel:
        stub = predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)
        answer = stub.ModelInfer(request, metadata=metadata, timeout=60)
    if not answer.outputs:
        raise SystemExit(f"gRPC answered no outputs: {answer}")


if __name__ == "__main__":
    main()
