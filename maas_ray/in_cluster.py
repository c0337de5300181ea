"""Predicts from inside the Ray cluster, over Serve handles instead of HTTP.

``MaaS(in_cluster=True)`` (the default in a Ray task or actor) and
``AsyncMaaS(in_cluster=True)``: code that runs on the cluster reaches a model's
replicas directly. ``ModelServer.serve_payload`` is the v1 route's own path (the canary
split, the shadow mirror, validation against the signature, the prediction log), so
the answers and the errors are HTTP's. A model without an application of its own (a
shared one, or a dedicated one whose replicas are still starting) goes to the gateway,
which hands it to the shared pool as it does an HTTP predict.

No API key is checked on this path: the caller already runs inside the cluster, which
Ray's own token guards (``security/ray_token.py``).
"""

from __future__ import annotations

import sys
import time
import uuid
from typing import Any

from maas_ray.errors import RemoteError, answered
from maas_ray.spec import GATEWAY_APP

ANSWER_TIMEOUT_S = 120.0  # a replica that went away mid-call: an error, not a hang
MISS_TTL_S = 2.0  # a name without its own application is asked again after this


def in_ray_worker() -> bool:
    """True in a Ray task or actor (never starts Ray: ``is_initialized`` first)."""
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return False
    return bool(ray.get_runtime_context().worker.mode == ray.WORKER_MODE)


class Handles:
    """Serve handles by application, and the predict call over them."""

    def __init__(self) -> None:
        self._apps: dict[str, Any] = {}
        self._missing: dict[str, float] = {}  # name -> when it had no application

    def predict(
        self, name: str, payload: dict[str, Any], version: str | None, request_id: str | None
    ) -> dict[str, Any]:
        """``{"predictions", "version", "request_id"}``; errors raised as RemoteError."""
        rid = request_id or str(uuid.uuid4())
        response = self._call(name, payload, version, rid)
        status, out, answered = response.result(timeout_s=ANSWER_TIMEOUT_S)
        return _answer(status, out, answered, rid)

    async def apredict(
        self, name: str, payload: dict[str, Any], version: str | None, request_id: str | None
    ) -> dict[str, Any]:
        """``predict`` for asyncio code (a Serve deployment, an async actor)."""
        import asyncio

        rid = request_id or str(uuid.uuid4())
        response = self._call(name, payload, version, rid)
        status, out, answered = await asyncio.wait_for(response, timeout=ANSWER_TIMEOUT_S)
        return _answer(status, out, answered, rid)

    def _call(self, name: str, payload: dict[str, Any], version: str | None, rid: str) -> Any:
        own = self._own(name)
        if own is not None:
            return own.serve_payload.remote(payload, rid, {}, version)
        gateway = self._app(GATEWAY_APP)
        if gateway is None:
            raise RemoteError(
                "the platform's gateway (Serve application maas-gateway) is not running: "
                "`maas up` starts it",
                status_code=503,
                remote_code="platform_unavailable",
            )
        return gateway.predict_payload.remote(name, payload, rid, version)

    def _own(self, name: str) -> Any:
        """The model's own application's handle, or None (shared, or not running)."""
        missed = self._missing.get(name)
        if missed is not None and time.monotonic() - missed < MISS_TTL_S:
            return None
        handle = self._app(name)
        if handle is None:
            self._missing[name] = time.monotonic()
        return handle

    def _app(self, app: str) -> Any:
        handle = self._apps.get(app)
        if handle is None:
            from ray import serve
            from ray.serve.exceptions import RayServeException

            try:
                handle = self._apps[app] = serve.get_app_handle(app)
            except RayServeException:  # no such application
                return None
        return handle


def _answer(status: int, out: bytes, version: str, request_id: str) -> dict[str, Any]:
    return {**answered(status, out), "version": version, "request_id": request_id}
