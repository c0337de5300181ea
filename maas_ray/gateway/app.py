"""The catch-all Serve application at ``/``: health, the OpenAPI document, /docs, JSON 404s.

The management API is an application of its own (``gateway/management.py``), so
nothing here waits for a deploy.

Serve routes by longest prefix, so anything no model application claims lands
here; a client then gets a JSON error that tells an unknown model from a
registered one that is not deployed, instead of Serve's plain-text 404.

Predicts for shared models land here too, and go to the shared pool. So do
predicts for a dedicated model whose spec is stored but whose application is not
routed yet (a first deploy, replicas starting): the warm pool answers them with
the same version, digest check and validation, marked ``x-maas-served-by:
shared-pool``. Once the model's own application holds the route, Serve's fallback
proxy passes on those it holds while no replica of it runs yet (``pooled``, called
from ``serving/fallback.py``), so during a first deploy the pool answers until the
model's replicas do.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
import uuid
from typing import Any

import orjson
from ray import serve
from ray.serve import Application
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import (
    MaasError,
    MethodNotAllowed,
    ModelNotFound,
    NotFound,
    PlatformUnavailable,
    RegistryUnavailable,
    VersionNotDeployed,
)
from maas_ray.gateway import console, docs
from maas_ray.gateway.grpc_front import GrpcFront
from maas_ray.gateway.oip_front import OipFront
from maas_ray.http_io import encode_error, read_body
from maas_ray.monitoring import prometheus
from maas_ray.monitoring.link import ROUTES as MONITORING_ROUTES
from maas_ray.monitoring.link import AdminLink
from maas_ray.monitoring.log import PredictionLog
from maas_ray.registry import Registry
from maas_ray.routes import Match, match
from maas_ray.security.auth import Guard
from maas_ray.security.log_masking import install_replica_logging
from maas_ray.serving.deployment import UNEXPECTED, error_response
from maas_ray.serving.shared import model_id
from maas_ray.settings import Settings
from maas_ray.spec import GATEWAY_DEPLOYMENT, SHARED_APP, SHARED_DEPLOYMENT
from maas_ray.wire import JSON, REQUEST_ID_HEADER, SERVED_BY_HEADER, VERSION_HEADER

logger = logging.getLogger(__name__)
SHARED_REFRESH_S = 2.0
# What the pool answers for a model whose own replicas do not run yet.
POOLED_ROUTES = frozenset({"predict", "predict_version", "explain", "explain_version"})
SHARED_MISS_REFRESH_S = 0.5


@serve.deployment(
    name=GATEWAY_DEPLOYMENT, max_ongoing_requests=64, ray_actor_options={"num_cpus": 0}
)
class Gateway:
    """Health checks, the OpenAPI document, shared-pool models, and JSON 404s."""

    def __init__(self, tracking_uri: str) -> None:
        settings = Settings()
        install_replica_logging()
        self.guard = Guard(settings)
        self.max_body = settings.max_body_bytes
        self.registry = Registry(tracking_uri, answering=True)
        self._pooled: dict[str, str] = {}  # model -> version the pool answers, from the registry
        self._starting: frozenset[str] = frozenset()  # those in their first deploy
        self._pooled_at = 0.0
        self._pool: DeploymentHandle | None = None
        self._document: dict[str, Any] | None = None  # the OpenAPI document
        self.tracking_uri = tracking_uri
        self.admin = AdminLink(self.max_body)
        self._logs: dict[str, PredictionLog] = {}  # shared-pool models' prediction logs
        # /v2: the Open Inference Protocol
        self.oip = OipFront(self, settings.json_max_depth, settings.explain_timeout_s)
        self.grpc = GrpcFront(self)  # the same over gRPC (Serve's gRPC ingress)

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._answer(request)
        except Exception:
            # A bug of ours: still a JSON answer, and the trace in the replica's log.
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
            return error_response(UNEXPECTED)

    # -- the Open Inference Protocol over gRPC: Serve calls these by the RPC's name ------
    async def ServerLive(self, request: Any) -> Any:
        return await self.grpc.server_live()

    async def ServerReady(self, request: Any) -> Any:
        return await self.grpc.server_ready()

    async def ServerMetadata(self, request: Any) -> Any:
        return await self.grpc.server_metadata()

    async def ModelReady(self, request: Any, grpc_context: Any) -> Any:
        return await self.grpc.model_ready(request, grpc_context)

    async def ModelMetadata(self, request: Any, grpc_context: Any) -> Any:
        return await self.grpc.model_metadata(request, grpc_context)

    async def ModelInfer(self, request: Any, grpc_context: Any) -> Any:
        return await self.grpc.model_infer(request, grpc_context)

    async def _answer(self, request: Request) -> Response:
        path = request.scope["path"]
        found = match(request.method, path)
        route = found.route
        try:
            public = route is not None and route.scopes is None
            if route is not None and route.app == "gateway" and found.allowed and public:
                return await self._own(route.name, found.params, request)
            self.guard.check(request.method, path, request.headers.get("authorization"), found)
            if route is not None and route.name == "metrics" and found.allowed:
                loop = asyncio.get_running_loop()
                text = await loop.run_in_executor(None, prometheus.scrape)
                return Response(text, media_type=prometheus.CONTENT_TYPE)
            if route is not None and route.name.startswith("v2_") and found.allowed:
                return await self.oip.answer(route.name, found.params, request)
        except MaasError as exc:
            return error_response(exc)
        if route is not None and route.name in MONITORING_ROUTES and found.allowed:
            # A shared or undeployed model's feedback and figures (a dedicated model's
            # own replicas pass these on themselves).
            try:
                return await self.admin.answer(route.name, found.params["name"], request)
            except MaasError as exc:
                return error_response(exc)
        if route is not None and route.app == "model":
            name = found.params["name"]
            version = await self.pool_version(name)
            if version is not None:
                try:
                    return await self._shared_predict(request, found, version)
                except MaasError as exc:
                    return error_response(exc, {VERSION_HEADER: version})
        try:
            if route is not None and route.app != "model" and not found.allowed:
                raise MethodNotAllowed(request.method, path, found.methods)
            if route is not None and route.app == "admin":
                # Serve sends /v1/admin to maas-admin; here only while it is not running.
                raise PlatformUnavailable(
                    "the management API (Serve application maas-admin) is not running; "
                    "`maas up` starts it"
                )
        except MaasError as exc:
            return error_response(exc)
        loop = asyncio.get_running_loop()
        miss = await loop.run_in_executor(None, self._miss, found, path)
        return error_response(miss)

    async def pooled(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The pool's answer (status, headers, body) to a model's predict or explain that
        Serve's fallback proxy holds because no replica of the model runs
        (``serving/fallback.py``), during the model's first deploy; None otherwise (the
        request waits for a replica then). Only a first deploy: while a running model
        is replaced, the version the pool would load is the new one, which may not load
        at all (a rollout puts the old one back then), so those wait for the old version
        or the new one, as Serve's rollout goes."""
        found = match(method, path)
        if found.route is None or found.route.name not in POOLED_ROUTES or not found.allowed:
            return None
        name = found.params["name"]
        version = await self.pool_version(name, fresh=True)
        if version is None or name not in self._starting:
            return None
        if found.params.get("version", version) != version:
            return None
        scope = {
            "type": "http",
            "method": method,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": headers,
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        response = await self.__call__(Request(scope, receive))
        return response.status_code, response.raw_headers, bytes(response.body)

    async def _own(self, name: str, params: dict[str, str], request: Request) -> Response:
        """The gateway's own public routes: health, the OpenAPI document, /docs, /console."""
        if name.startswith("v2_"):
            return await self.oip.public(name)
        if name == "openapi":
            return Response(orjson.dumps(await self._openapi()), media_type=JSON)
        if name == "docs":
            return Response(docs.page(), media_type="text/html")
        if name == "docs_asset":
            loop = asyncio.get_running_loop()
            content, media_type = await loop.run_in_executor(None, docs.asset, params["asset"])
            cache = {"cache-control": "public, max-age=86400"}
            return Response(content, media_type=media_type, headers=cache)
        if name == "console":  # the first one reads and packs the files (off the loop)
            page = await asyncio.get_running_loop().run_in_executor(None, console.page)
            headers = {"content-security-policy": console.POLICY, "cache-control": "no-store"}
            return Response(page, media_type="text/html", headers=headers)
        if name == "console_asset":
            loop = asyncio.get_running_loop()
            packed, media_type = await loop.run_in_executor(None, console.asset, params["asset"])
            headers = {"cache-control": "public, max-age=3600", "vary": "accept-encoding"}
            if "gzip" in request.headers.get("accept-encoding", ""):
                headers["content-encoding"] = "gzip"
                return Response(packed, media_type=media_type, headers=headers)
            content = await loop.run_in_executor(None, gzip.decompress, packed)
            return Response(content, media_type=media_type, headers=headers)
        return Response(orjson.dumps({"status": "ok"}), media_type=JSON)

    async def _openapi(self) -> dict[str, Any]:
        if self._document is None:  # built once: pydantic's schema generation is not free
            from maas_ray.gateway.openapi import openapi_document

            self._document = openapi_document()
        return self._document

    async def pool_version(self, name: str, fresh: bool = False) -> str | None:
        """The version the shared pool answers for ``name`` (None: not the pool's to answer).

        Read from the registry at most every SHARED_REFRESH_S, and once more on a
        miss (every SHARED_MISS_REFRESH_S), so a new shared model or a new deploy is
        seen within half a second, a promote within SHARED_REFRESH_S. ``fresh``: read
        no older than SHARED_MISS_REFRESH_S.
        """
        age = time.monotonic() - self._pooled_at
        stale = fresh or name not in self._pooled
        if age > SHARED_REFRESH_S or (stale and age > SHARED_MISS_REFRESH_S):
            loop = asyncio.get_running_loop()
            try:
                read = await loop.run_in_executor(None, self.registry.pool_map)
                self._pooled, self._starting = read
            except RegistryUnavailable:
                pass  # MLflow is down: serve from the last map read (a miss answers 503)
            self._pooled_at = time.monotonic()
        return self._pooled.get(name)

    async def _shared_predict(self, request: Request, found: Match, version: str) -> Response:
        assert found.route is not None
        name, asked = found.params["name"], found.params.get("version")
        if asked is not None and asked != version:
            raise VersionNotDeployed(name, asked)
        explain = found.route.name in ("explain", "explain_version")
        if found.route.name not in ("predict", "predict_version") and not explain:
            raise NotFound(f"no route {request.method} {request.scope['path']} on the shared pool")
        if not found.allowed:
            raise MethodNotAllowed(request.method, request.scope["path"], found.methods)
        body = await read_body(request, self.max_body)
        ctype = request.headers.get("content-type")
        headers = {VERSION_HEADER: version, SERVED_BY_HEADER: "shared-pool"}
        if explain:  # not logged: an explanation is not a prediction to monitor
            fmt = request.query_params.get("format")
            status, out = await self.pool_explain(name, version, body, ctype, fmt=fmt)
            return Response(out, status_code=status, media_type=JSON, headers=headers)
        request_id = request.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        status, out = await self.pool_answer(name, version, body, ctype, request_id)
        return Response(out, status_code=status, media_type=JSON, headers=headers)

    def _pool_handle(self, name: str, version: str) -> DeploymentHandle:
        if self._pool is None:
            self._pool = serve.get_deployment_handle(SHARED_DEPLOYMENT, app_name=SHARED_APP)
        return self._pool.options(multiplexed_model_id=model_id(name, version))

    async def pool_answer(
        self, name: str, version: str, body: bytes, ctype: str | None, request_id: str
    ) -> tuple[int, bytes]:
        """A predict the shared pool answers, logged: (HTTP status, JSON answer)."""
        started = time.perf_counter()
        try:
            status, out = await self._pool_handle(name, version).answer.remote(body, ctype)
        except Exception as exc:
            # No pool (a Serve config without it) or its replica going away.
            logger.warning("shared pool did not answer for %s", name, exc_info=True)
            raise PlatformUnavailable(
                f"model '{name}' version {version} is not ready yet: its replicas are "
                "starting; retry in a few seconds"
            ) from exc
        log = self._logs.get(name)
        if log is None:
            log = self._logs[name] = PredictionLog(name, self.tracking_uri)
        took = time.perf_counter() - started
        log.record(request_id, version, "production", status, took, body, ctype, out)
        return status, out

    async def pool_explain(
        self,
        name: str,
        version: str,
        body: bytes,
        ctype: str | None,
        predictions: bool = False,
        fmt: str | None = None,
    ) -> tuple[int, bytes]:
        """An explain the shared pool answers, not logged (an explanation is not a
        prediction to monitor): (HTTP status, JSON answer). ``predictions``: with the
        predictions beside; ``fmt``: the request's ``format`` (``ModelRuntime.explain_bytes``)."""
        handle = self._pool_handle(name, version)
        try:
            status, out = await handle.explain.remote(body, ctype, predictions, fmt)
        except Exception as exc:
            logger.warning("shared pool did not explain for %s", name, exc_info=True)
            raise PlatformUnavailable(
                f"model '{name}' version {version} is not ready yet: its replicas are "
                "starting; retry in a few seconds"
            ) from exc
        return status, out

    async def pool_describe(self, name: str, version: str) -> dict[str, Any]:
        """Name, version and signature of a version the shared pool answers."""
        described: dict[str, Any] = await self._pool_handle(name, version).describe.remote()
        return described

    async def predict_payload(
        self, name: str, payload: dict[str, Any], request_id: str, version: str | None = None
    ) -> tuple[int, bytes, str]:
        """For the in-cluster SDK (``maas_ray/in_cluster.py``), a model with no application
        of its own: shared, or its replicas starting. Never raises: (status, JSON answer
        or error, the version that answered)."""
        try:
            status, out, answered, _ = await self.oip.route(name, payload, request_id, {}, version)
        except MaasError as exc:
            return exc.status_code, encode_error(exc), version or ""
        return status, out, answered

    def miss_model(self, name: str) -> MaasError:
        """The 404 of a model that nothing serves: unknown, or not deployed."""
        try:
            self.registry.get_model(name)
        except (ModelNotFound, RegistryUnavailable) as exc:
            return exc
        return VersionNotDeployed(name)

    def _miss(self, found: Match, path: str) -> MaasError:
        """The 404 of a path no application took: an unknown model, or one not deployed."""
        if found.route is not None and found.route.app == "model":
            return self.miss_model(found.params["name"])
        return NotFound(f"no route {path}")


def build_gateway(args: dict[str, Any]) -> Application:
    """Serve application builder for the gateway (``args``: optional ``tracking_uri``)."""
    # serve.deployment turns the class into a Deployment; mypy still sees the class.
    return Gateway.bind(  # type: ignore[attr-defined]
        args.get("tracking_uri") or Settings().mlflow_uri
    )
