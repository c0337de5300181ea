"""A load generator in Python for what wrk cannot speak (gRPC), and its REST twin.

wrk speaks HTTP/1.1 only. To compare gRPC with REST fairly, both are driven by the
same kind of client here: ``connections`` asyncio workers in one process, each sending
its next request when its last one is answered, for ``seconds``: grpc.aio over one
HTTP/2 channel (how gRPC clients work), and aiohttp over ``connections`` keep-alive
connections. A Python client costs more CPU than wrk, on the same 2 cores as the
server, so its figures are lower than wrk's; only the ratio between the two is the
finding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import grpc
import numpy as np

from benchmarks.load import LoadResult
from maas_ray.serving.proto import predict_v2_pb2_grpc


async def _drive(
    call: Callable[[], Awaitable[bool]], connections: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal errors
        while time.perf_counter() < stop:
            started = time.perf_counter()
            if not await call():
                errors += 1
            latencies.append(time.perf_counter() - started)

    began = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    took = time.perf_counter() - began
    ms = np.asarray(latencies) * 1000
    return LoadResult(
        rps=len(latencies) / took,
        p50_ms=float(np.percentile(ms, 50)),
        p95_ms=float(np.percentile(ms, 95)),
        p99_ms=float(np.percentile(ms, 99)),
        requests=len(latencies),
        errors=errors,
    )


def grpc_load(
    target: str, request: Any, metadata: list[tuple[str, str]], connections: int, seconds: float
) -> LoadResult:
    """``ModelInfer(request)`` from ``connections`` concurrent calls on one channel."""

    async def main() -> LoadResult:
        async with grpc.aio.insecure_channel(target) as channel:
            stub = predict_v2_pb2_grpc.GRPCInferenceServiceStub(channel)

            async def call() -> bool:
                try:
                    await stub.ModelInfer(request, metadata=metadata, timeout=30)
                except grpc.aio.AioRpcError:
                    return False
                return True

            return await _drive(call, connections, seconds)

    return asyncio.run(main())


def http_load(
    url: str, body: bytes, headers: dict[str, str], connections: int, seconds: float
) -> LoadResult:
    """POST ``body`` from ``connections`` concurrent keep-alive connections."""

    async def main() -> LoadResult:
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def call() -> bool:
                try:
                    async with session.post(url, data=body, headers=headers) as resp:
                        await resp.read()
                        return resp.status == 200
                except aiohttp.ClientError:
                    return False

            return await _drive(call, connections, seconds)

    return asyncio.run(main())
