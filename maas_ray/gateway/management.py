"""The management API as a Serve application of its own (``maas-admin``, ``/v1/admin``).

It never shares a thread with the data plane: reads run on a small pool of their
own, and long actions (the table's ``long`` routes: deploy, undeploy, promote,
rollback, canary, shadow, apply) are operations, run one at a time on their own
worker. Such a call answers 202 with the operation at once; if the action fails
within the first moments (a bad version, no room on the cluster), the call
answers that error instead, so a refusal still comes back as a 4xx.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
from ray import serve
from ray.serve import Application
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, MethodNotAllowed, NotFound, UnsupportedMediaType
from maas_ray.gateway import admin
from maas_ray.gateway.operations import Operations
from maas_ray.http_io import UNEXPECTED, encode_error, error_response, read_body
from maas_ray.monitoring.api import Monitor
from maas_ray.registry import Registry
from maas_ray.routes import BY_NAME, Match, match, url
from maas_ray.security.auth import Guard
from maas_ray.security.log_masking import install_replica_logging
from maas_ray.security.scopes import Principal
from maas_ray.serving.grpc_elsewhere import GrpcElsewhere
from maas_ray.settings import Settings
from maas_ray.wire import ACTOR_HEADER, JSON

logger = logging.getLogger(__name__)
# How long a long action may take to fail before its call answers 202: enough for
# validation and admission (a 409 at once), short enough to stay under 2 s.
GRACE_S = 1.0


@serve.deployment(
    name="Admin", num_replicas=1, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0}
)
class ManagementAPI(GrpcElsewhere):
    """Status, registry, lifecycle, keys and audit over HTTP; see ``gateway/admin.py``."""

    def __init__(self, tracking_uri: str) -> None:
        settings = Settings()
        install_replica_logging()
        self.guard = Guard(settings)
        self.max_body = settings.max_body_bytes
        self.registry = Registry(tracking_uri, answering=True)
        self.reads = ThreadPoolExecutor(max_workers=4, thread_name_prefix="maas-admin-read")
        self.operations = Operations()
        self.monitoring = Monitor(self.registry, tracking_uri)
        self.monitoring.retrainer.act = self.act
        self.monitoring.start_metrics(settings.monitor_metrics_s)

    def act(self, route: str, model: str, body: dict[str, Any], actor: str) -> Any:
        """Run management route ``route`` for ``model`` as one of this replica's operations
        (one at a time with every other change, audited), on the caller's thread's
        behalf: what the retrain loop canaries, promotes and ends with. Its answer, or
        its MaasError raised."""
        call = admin.Call(
            route=BY_NAME[route],
            principal=Principal(name=actor, scopes=frozenset({"admin"})),
            params={"name": model},
            body=orjson.dumps(body),
        )
        _, future = self.operations.submit(
            route, model, actor, lambda progress: admin.handle(self.registry, call, None, progress)
        )
        return future.result()[1]

    async def monitor(
        self, route: str, model: str, body: bytes, query: dict[str, str]
    ) -> tuple[int, bytes]:
        """The feedback and monitoring routes, passed on by a model's replica or the gateway.

        Returns (HTTP status, JSON body); never raises (errors are JSON answers).
        """
        loop = asyncio.get_running_loop()
        try:
            status, answer = await loop.run_in_executor(
                self.reads, self.monitoring.handle, route, model, body, query
            )
        except MaasError as exc:
            return exc.status_code, encode_error(exc)
        except Exception:
            logger.exception("unexpected error on %s of %s", route, model)
            return UNEXPECTED.status_code, encode_error(UNEXPECTED)
        return status, orjson.dumps(answer)

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._answer(request)
        except MaasError as exc:
            return error_response(exc)
        except Exception:
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_response(UNEXPECTED)

    async def _answer(self, request: Request) -> Response:
        path = request.scope["path"]
        found = match(request.method, path)
        auth = request.headers.get("authorization")
        principal = self.guard.check(request.method, path, auth, found)
        route = found.route
        if route is None or route.app != "admin":
            raise NotFound(f"no management route {request.method} {path}")
        if not found.allowed:
            raise MethodNotAllowed(request.method, path, found.methods)
        call = await self._call(request, found, principal)
        loop = asyncio.get_running_loop()
        if not route.long:
            status, answer = await loop.run_in_executor(
                self.reads, admin.handle, self.registry, call, self.operations
            )
            return Response(orjson.dumps(answer), status_code=status, media_type=JSON)
        admin.validate(call)  # a bad body or query is a 4xx now, not a failed operation
        op, future = self.operations.submit(
            route.name,
            call.params.get("name", "*"),
            call.actor,
            lambda progress: admin.handle(self.registry, call, None, progress),
        )
        waited = asyncio.wrap_future(future)
        waited.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved here
        try:
            # A refusal within the grace period is answered as itself (a 4xx).
            await asyncio.wait_for(asyncio.shield(waited), GRACE_S)
        except TimeoutError:
            pass
        location = url("operation", op_id=op.id)
        body = orjson.dumps(self.operations.get(op.id).model_dump())
        return Response(body, status_code=202, media_type=JSON, headers={"location": location})

    async def _call(self, request: Request, found: Match, principal: Principal) -> admin.Call:
        assert found.route is not None
        body = await read_body(request, self.max_body)
        mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if body and mime not in (JSON, ""):
            raise UnsupportedMediaType(f"got content type '{mime}': send {JSON}")
        return admin.Call(
            route=found.route,
            principal=principal,
            params=found.params,
            body=body,
            query=dict(request.query_params),
            user=request.headers.get(ACTOR_HEADER),
        )


def build_admin(args: dict[str, Any]) -> Application:
    """Serve application builder for the management API (``args``: ``tracking_uri``)."""
    return ManagementAPI.bind(  # type: ignore[attr-defined]
        args.get("tracking_uri") or Settings().mlflow_uri
    )
