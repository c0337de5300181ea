"""The replica's explain calls (``POST .../explain``, an OIP infer with ``explain``, and a
primary passing one pinned to its canary's version), mixed into ``ModelServer``.

Explanations run in a thread of their own, started on the first one, one at a time:
SHAP's thousands of model calls never hold up the replica's event loop, nor take the
threads that slow predicts use. They are not split between versions (unpinned, the
primary explains) and not logged: an explanation is not a prediction to monitor.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, VersionNotDeployed
from maas_ray.http_io import encode_error, read_body
from maas_ray.serving.runtime import bounded
from maas_ray.wire import JSON, VERSION_HEADER

if TYPE_CHECKING:
    from maas_ray.serving.runtime import ModelRuntime
    from maas_ray.serving.split import TrafficSplit


class Explaining:
    """What ``ModelServer`` adds for explanations (it sets the attributes below)."""

    runtime: ModelRuntime
    split: TrafficSplit
    explain_timeout_s: float
    explain_share: float
    max_body: int
    _headers: dict[str, str]
    _explainer_thread: ThreadPoolExecutor | None = None
    _paced: Paced

    def _refused(self, exc: MaasError, body: bytes) -> tuple[int, bytes, str]:
        raise NotImplementedError  # ModelServer's: the error answer of a payload call

    async def _serve_explain(self, request: Request, target: str | None) -> Response:
        """``POST .../explain`` (``target``: the version the path pins, if any)."""
        body = await read_body(request, self.max_body)
        ctype = request.headers.get("content-type")
        fmt = request.query_params.get("format")  # png: heat maps (ModelRuntime.explain)
        if target is not None and target != self.runtime.version and self.split.handle is not None:
            status, out = await self.split.handle.explain.remote(body, ctype, fmt=fmt)
            return Response(
                out, status_code=status, media_type=JSON, headers={VERSION_HEADER: target}
            )
        # Unpinned, the primary explains: an explanation is not a prediction to split.
        return Response(
            await self._explain(body, ctype, fmt=fmt), media_type=JSON, headers=self._headers
        )

    async def explain(
        self,
        body: bytes,
        content_type: str | None,
        predictions: bool = False,
        fmt: str | None = None,
    ) -> tuple[int, bytes]:
        """An explain over a handle (a primary passing on one pinned to its canary's
        version) that never raises: (HTTP status, JSON body). ``predictions``: the
        answer carries the predictions too (``ModelRuntime.explain_bytes``)."""
        try:
            return 200, await self._explain(body, content_type, predictions, fmt)
        except MaasError as exc:
            return exc.status_code, encode_error(exc)

    async def explain_payload(
        self, payload: dict[str, Any], version: str | None = None
    ) -> tuple[int, bytes, str]:
        """For the gateway's OIP v2 infer with ``parameters.explain``, never raising:
        (HTTP status, JSON ``{"predictions", "explanation"}`` or error, the version that
        answered). As ``POST .../explain``: unpinned, the primary explains (an
        explanation is not a prediction to split); pinned to the canary's version, the
        canary does. Not logged: an explanation is not a prediction to monitor."""
        body = b""
        try:
            body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
            if version is not None and version != self.runtime.version:
                handle = self.split.handle if version == self.split.version else None
                if handle is None:
                    raise VersionNotDeployed(self.runtime.name, version)
                status, out = await handle.explain.remote(body, JSON, True)
                return status, out, version
            return 200, await self._explain(body, JSON, True), self.runtime.version
        except MaasError as exc:
            return self._refused(exc, body)

    async def _explain(
        self, body: bytes, ctype: str | None, predictions: bool = False, fmt: str | None = None
    ) -> bytes:
        if self._explainer_thread is None:
            self._explainer_thread = ThreadPoolExecutor(
                1, thread_name_prefix="maas-explain", initializer=_behind_predicts
            )
            self._paced = Paced(self.explain_share)
        loop = asyncio.get_running_loop()
        explain = self.runtime.explain_bytes
        work = loop.run_in_executor(
            self._explainer_thread, self._paced, explain, body, ctype, predictions, fmt
        )
        return await bounded(work, self.explain_timeout_s, self.runtime)


class Paced:
    """Runs calls (on one thread) so that they take at most ``share`` of its time: after
    a call that took t seconds, the next one starts t * (1 / share - 1) later (at most
    ``MAX_PAUSE_S``). A predict and an explain share the replica's CPU and the GIL; a
    thread's lower priority (below) alone did not keep explains from halving the
    predicts of a torch model on 2 cores (benchmarks/explain.py)."""

    MAX_PAUSE_S = 2.0

    def __init__(self, share: float) -> None:
        self.share = share
        self._next = 0.0

    def __call__(self, fn: Any, *args: Any) -> Any:
        wait = self._next - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        started = time.monotonic()
        try:
            return fn(*args)
        finally:
            took = time.monotonic() - started
            pause = min(took * (1 / self.share - 1), self.MAX_PAUSE_S)
            self._next = time.monotonic() + pause


EXPLAIN_NICE = 10


def _behind_predicts() -> None:
    """Lower the explain thread's CPU priority (Linux: a thread has its own nice value,
    and the threads it starts, such as torch's, inherit it): on a busy core the
    scheduler runs the predicts first. Measured in benchmarks/explain.py."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), EXPLAIN_NICE)
