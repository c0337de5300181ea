"""The replica's explain calls (``POST .../explain``, an OIP infer with ``explain``, and a
primary passing one pinned to its canary's version), mixed into ``ModelServer``.

Explanations run in a thread of their own, started on the first one, one at a time:
SHAP's thousands of model calls never hold up the replica's event loop, nor take the
threads that slow predicts use. They are not split between versions (unpinned, the
primary explains) and not logged: an explanation is not a prediction to monitor.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, VersionNotDeployed
from maas_ray.serving.http import encode_error, read_body
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
    max_body: int
    mask_fields: list[str]
    _headers: dict[str, str]
    _explainer_thread: ThreadPoolExecutor | None = None

    def _masked(self, exc: MaasError, record: Any) -> bytes | None:
        raise NotImplementedError

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
            record = orjson.loads(body) if self.mask_fields and body else None
            return (
                exc.status_code,
                self._masked(exc, record) or encode_error(exc),
                self.runtime.version,
            )

    async def _explain(
        self, body: bytes, ctype: str | None, predictions: bool = False, fmt: str | None = None
    ) -> bytes:
        if self._explainer_thread is None:
            self._explainer_thread = ThreadPoolExecutor(1, thread_name_prefix="maas-explain")
        loop = asyncio.get_running_loop()
        explain = self.runtime.explain_bytes
        work = loop.run_in_executor(self._explainer_thread, explain, body, ctype, predictions, fmt)
        return await bounded(work, self.explain_timeout_s, self.runtime)
