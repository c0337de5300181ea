"""The catch-all Serve application at ``/``: health routes and JSON 404s.

Serve routes by longest prefix, so anything no model application claims lands
here; a client then gets a JSON error that tells an unknown model from a
registered one that is not deployed, instead of Serve's plain-text 404.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, ModelNotFound, NotFound, VersionNotDeployed
from maas_ray.registry import Registry
from maas_ray.serving.deployment import JSON, error_response
from maas_ray.settings import Settings

HEALTH_PATHS = ("/healthz", "/v2/health/live", "/v2/health/ready")


@serve.deployment(name="Gateway", max_ongoing_requests=64, ray_actor_options={"num_cpus": 0})
class Gateway:
    """Answers health checks and unknown routes with JSON."""

    def __init__(self, tracking_uri: str) -> None:
        self.registry = Registry(tracking_uri)

    async def __call__(self, request: Request) -> Response:
        path = request.scope["path"]
        if path in HEALTH_PATHS:
            return Response(orjson.dumps({"status": "ok"}), media_type=JSON)
        miss = await asyncio.get_running_loop().run_in_executor(None, self._miss, path)
        return error_response(miss)

    def _miss(self, path: str) -> MaasError:
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[:2] == ["v1", "models"]:
            name = parts[2]
            try:
                self.registry.get_model(name)
            except ModelNotFound as exc:
                return exc
            return VersionNotDeployed(name)
        return NotFound(f"no route {path}")


def build_gateway(args: dict[str, Any]) -> Application:
    """Serve application builder for the gateway (``args``: optional ``tracking_uri``)."""
    # serve.deployment turns the class into a Deployment; mypy still sees the class.
    return Gateway.bind(  # type: ignore[attr-defined]
        args.get("tracking_uri") or Settings().mlflow_uri
    )
