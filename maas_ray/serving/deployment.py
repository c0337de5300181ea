"""The Ray Serve deployment that serves one model version over HTTP.

Routes, relative to the application's route prefix ``/v1/models/{name}``:
``POST /predict``, ``POST /versions/{v}/predict``, ``GET /`` and
``GET /versions/{v}`` (metadata). One hop from the Serve proxy to this code.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import BadRequest, MaasError, NotFound, VersionNotDeployed
from maas_ray.registry import Registry
from maas_ray.serving.protocol import encode_error
from maas_ray.serving.runtime import ModelRuntime

logger = logging.getLogger(__name__)

VERSION_HEADER = "x-maas-model-version"
JSON = "application/json"


def error_response(error: MaasError, headers: dict[str, str] | None = None) -> Response:
    """The one place an error becomes an HTTP response."""
    return Response(
        encode_error(error), status_code=error.status_code, media_type=JSON, headers=headers
    )


@serve.deployment(name="ModelServer", max_ongoing_requests=64, health_check_period_s=10)
class ModelServer:
    """Wraps one registered model version: load verified, validate, predict."""

    def __init__(self, model: str, version: str, tracking_uri: str) -> None:
        self.runtime = ModelRuntime.load(Registry(tracking_uri), model, version)
        self._headers = {VERSION_HEADER: version}

    async def predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        """For Serve handles: a scoring-format dict in, ``{"predictions", "version"}`` out.

        ``serve.get_app_handle(name).predict.remote({"inputs": [...]})``; errors are
        raised as the same MaasError an HTTP caller would get as JSON.
        """
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        out = await asyncio.get_running_loop().run_in_executor(
            None, self.runtime.predict_bytes, body, JSON
        )
        return {**orjson.loads(out), "version": self.runtime.version}

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._route(request)
        except MaasError as exc:
            return error_response(exc, self._headers)

    async def _route(self, request: Request) -> Response:
        root = request.scope.get("root_path", "")
        path = request.scope["path"]
        sub = path[len(root) :] if path.startswith(root) else path
        parts = [p for p in sub.split("/") if p]
        version = self.runtime.version
        if len(parts) == 3 and parts[0] == "versions":
            if parts[1] != version:
                raise VersionNotDeployed(self.runtime.name, parts[1])
            parts = parts[2:]
        elif len(parts) == 2 and parts[0] == "versions" and request.method == "GET":
            if parts[1] != version:
                raise VersionNotDeployed(self.runtime.name, parts[1])
            parts = []
        if parts == ["predict"]:
            if request.method != "POST":
                raise BadRequest("use POST for predict", status_code=405)
            body = await request.body()
            # Model code may be slow; keep the replica's event loop free.
            out = await asyncio.get_running_loop().run_in_executor(
                None, self.runtime.predict_bytes, body, request.headers.get("content-type")
            )
            return Response(out, media_type=JSON, headers=self._headers)
        if not parts and request.method == "GET":
            return Response(
                orjson.dumps(self.runtime.describe()), media_type=JSON, headers=self._headers
            )
        raise NotFound(f"no route {request.method} {path}")
