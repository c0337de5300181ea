"""The Open Inference Protocol v2 routes (REST) of the gateway, for every served model.

``/v2/...`` lies outside every model application's route prefix, so Serve sends it to
the gateway. A model whose own replicas run gets the request over a Serve handle
(``ModelServer.serve_payload``: the v1 route's canary split, shadow, validation and
prediction log); a shared model, or a dedicated one whose replicas are still starting,
is answered by the shared pool, as a v1 predict is. The translation is
``serving/oip.py`` (requests) and ``serving/oip_answer.py`` (answers, metadata).
An infer with ``"parameters": {"explain": true}`` goes the v1 explain route's way
instead (``ModelServer.explain_payload``, or the pool's ``explain``): the predictions
come back with an ``explanations`` output beside them.

Readiness comes from Serve's own status (read at most once a second): the server is
ready when every application has a running replica; a model, when its own replicas or
the pool can answer it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import TYPE_CHECKING, Any

import orjson
from mlflow.types import Schema
from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, PlatformUnavailable, VersionNotDeployed
from maas_ray.http_io import read_body
from maas_ray.serving import oip, oip_answer, oip_payload
from maas_ray.spec import challenger_app
from maas_ray.wire import JSON, REQUEST_ID_HEADER, SERVED_BY_HEADER, VERSION_HEADER

if TYPE_CHECKING:
    from maas_ray.gateway.app import Gateway

logger = logging.getLogger(__name__)
STATUS_TTL_S = 1.0  # Serve's status, read at most this often
PRIMARY_TTL_S = 2.0  # which version a model's own replicas serve (a promote changes it)
ANSWER_TIMEOUT_S = 120.0  # a replica that went away mid-call: 503, not a hang
EXPLAIN_MARGIN_S = 10.0  # beyond MAAS_EXPLAIN_TIMEOUT_S, the replica's own bound
INLINE_BODY_MAX = 64 * 1024  # larger requests are decoded in a thread


def _release() -> str:
    try:
        return package_version("maas-ray")
    except PackageNotFoundError:
        return "0"


def server_metadata() -> dict[str, Any]:
    """``GET /v2``: the server's name, release and protocol extensions."""
    return {"name": oip_answer.SERVER, "version": _release(), "extensions": oip_answer.EXTENSIONS}


class OipFront:
    """The ``v2_*`` routes; ``gateway`` lends the shared pool, the registry and its 404s."""

    def __init__(
        self, gateway: Gateway, max_depth: int, explain_timeout_s: float = ANSWER_TIMEOUT_S
    ) -> None:
        self.gateway = gateway
        self.max_depth = max_depth
        # The replica answers an explain past its own limit with a 504: wait longer than
        # that, so the caller gets that answer, not a 503 from here.
        self.explain_wait_s = max(ANSWER_TIMEOUT_S, explain_timeout_s + EXPLAIN_MARGIN_S)
        self._running: dict[str, int] = {}  # application -> running replicas (ingress)
        self._running_at = 0.0
        self._handles: dict[str, Any] = {}
        self._primary: dict[str, tuple[float, dict[str, Any]]] = {}  # name -> describe()
        self._challenger: dict[str, tuple[float, str]] = {}  # name -> its canary's version
        self._described: dict[tuple[str, str], dict[str, Any]] = {}  # (name, version) ->

    # -- public routes --------------------------------------------------------------
    async def public(self, route: str) -> Response:
        """``GET /v2``, ``/v2/health/live``, ``/v2/health/ready`` (no credential)."""
        if route == "v2_server":
            return _json(server_metadata())
        if route == "v2_live":
            return _json({"live": True})
        why = await self.server_unready()
        if why:
            return _json({"ready": False, "error": why}, 503)
        return _json({"ready": True})

    async def server_unready(self) -> str | None:
        """Why the server is not ready (an application without a running replica), or None."""
        running = await self._applications()
        idle = sorted(app for app, n in running.items() if n == 0)
        if not running or idle:
            return f"no running replica yet: {', '.join(idle)}" if idle else "Serve not answering"
        return None

    # -- model routes ---------------------------------------------------------------
    async def answer(self, route: str, params: dict[str, str], request: Request) -> Response:
        """Metadata, readiness or an infer of ``params['name']`` (checked by the guard)."""
        name, asked = params["name"], params.get("version")
        if route in ("v2_model_ready", "v2_version_ready"):
            return await self._ready(name, asked)
        if route in ("v2_model", "v2_version"):
            return await self._metadata(name, asked)
        return await self._infer(name, asked, request)

    async def _ready(self, name: str, asked: str | None) -> Response:
        why = await self.model_unready(name, asked)
        if why:
            return _json({"name": name, "ready": False, "error": why}, 503)
        return _json({"name": name, "ready": True})

    async def model_unready(self, name: str, asked: str | None) -> str | None:
        """Why ``name`` (version ``asked``) cannot answer yet, or None; an unknown model
        or version raises its 404."""
        try:
            own, version = await self._backend(name)
            if asked is not None:
                await self._describe_version(name, own, version, asked)
        except MaasError as exc:
            if exc.status_code != 503:
                raise
            return str(exc)
        return None

    async def _metadata(self, name: str, asked: str | None) -> Response:
        return _json(await self.metadata(name, asked))

    async def metadata(self, name: str, asked: str | None) -> dict[str, Any]:
        """The model's OIP metadata: inputs and outputs from the version's signature."""
        own, version = await self._backend(name)
        described = await self._describe_version(name, own, version, asked)
        versions = [described["version"]]
        if asked is None and own:
            canary = await self._canary_version(name)
            versions += [canary] if canary and canary not in versions else []
        return oip_answer.model_metadata(name, versions, described)

    async def _infer(self, name: str, asked: str | None, request: Request) -> Response:
        body = await read_body(request, self.gateway.max_body)
        target = await self.target(name)
        length = request.headers.get(oip.HEADER_LENGTH)
        if len(body) > INLINE_BODY_MAX:
            loop = asyncio.get_running_loop()
            decoded = await loop.run_in_executor(None, oip.decode, body, length, self.max_depth)
        else:
            decoded = oip.decode(body, length, self.max_depth)
        request_id = request.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        done = await self.infer(name, asked, target, decoded, request_id, dict(request.headers))
        if done.status != 200:  # the v1 error as it is: {"error", "code"}
            return Response(
                done.out, status_code=done.status, media_type=JSON, headers=done.headers
            )
        content, extra = oip_answer.answer(
            done.predictions, name, done.version, decoded, done.outputs_schema, done.explanation
        )
        media = extra.pop("content-type")
        return Response(content, media_type=media, headers={**done.headers, **extra})

    async def target(self, name: str) -> Target:
        """Who answers ``name`` and what its inputs are; else its 404 or 503."""
        own, version = await self._backend(name)
        return Target(own, version, await self._describe_version(name, own, version, None))

    async def infer(
        self,
        name: str,
        asked: str | None,
        target: Target,
        decoded: oip.Decoded,
        request_id: str,
        headers: dict[str, str],
    ) -> Inferred:
        """Decoded tensors to whoever answers ``name`` (REST and gRPC alike): the v1
        route's canary split, validation and prediction log; with ``parameters.explain``
        the v1 explain route's way instead (the predictions come with the explanation)."""
        payload = oip_payload.payload(decoded, oip_answer.schema_of(target.described.get("inputs")))
        status, out, answered, extra = await self.route(
            name,
            payload,
            request_id,
            headers,
            asked,
            (target.own, target.version),
            explain=decoded.explain,
        )
        if status != 200:
            return Inferred(status, out, answered, extra)
        described = target.described
        if answered != described["version"]:  # the canary, or a promote just now
            described = await self._answered_by(
                name, target.own, target.version, answered, described
            )
        doc = orjson.loads(out)
        done = Inferred(status, out, answered, extra, doc["predictions"])
        done.outputs_schema = oip_answer.schema_of(described.get("outputs"))
        done.explanation = doc.get("explanation")
        return done

    # -- where a model is answered ----------------------------------------------------
    async def route(
        self,
        name: str,
        payload: dict[str, Any],
        request_id: str,
        headers: dict[str, str],
        asked: str | None,
        backend: tuple[bool, str | None] | None = None,
        explain: bool = False,
    ) -> tuple[int, bytes, str, dict[str, str]]:
        """A scoring payload to whoever answers ``name``: (status, JSON answer or error,
        the version that answered, headers to add). ``backend``: from ``_backend``.
        ``explain``: explained, not predicted (``ModelRuntime.explain_bytes``): the
        answer is ``{"predictions", "explanation"}``, not logged, never split."""
        own, version = backend or await self._backend(name)
        if own:
            if explain:
                status, out, answered = await self._call(
                    name, "explain_payload", payload, asked, timeout_s=self.explain_wait_s
                )
            else:
                status, out, answered = await self._call(
                    name, "serve_payload", payload, request_id, headers, asked
                )
            return status, out, answered, {VERSION_HEADER: answered}
        if asked is not None and asked != version:
            raise VersionNotDeployed(name, asked)
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        if explain:
            status, out = await self.gateway.pool_explain(name, str(version), body, JSON, True)
        else:
            status, out = await self.gateway.pool_answer(name, str(version), body, JSON, request_id)
        return (
            status,
            out,
            str(version),
            {VERSION_HEADER: str(version), SERVED_BY_HEADER: "shared-pool"},
        )

    async def _backend(self, name: str) -> tuple[bool, str | None]:
        """(own replicas?, the pool's version): who answers ``name``; else its 404/503."""
        running = (await self._applications()).get(name)
        if running:
            return True, None
        version = await self.gateway.pool_version(name)
        if version is not None:
            return False, version
        if running == 0:
            raise PlatformUnavailable(
                f"model '{name}' is not ready yet: its replicas are starting; retry in a "
                "few seconds"
            )
        loop = asyncio.get_running_loop()
        raise await loop.run_in_executor(None, self.gateway.miss_model, name)

    async def _applications(self) -> dict[str, int]:
        """Running replicas of each Serve application's deployments (cached a second)."""
        if time.monotonic() - self._running_at > STATUS_TTL_S:
            loop = asyncio.get_running_loop()
            try:
                status = await loop.run_in_executor(None, serve.status)
            except Exception:
                logger.warning("Serve's status did not answer", exc_info=True)
                return {}
            running = {}
            for app, overview in status.applications.items():
                running[app] = sum(
                    n
                    for d in overview.deployments.values()
                    for state, n in d.replica_states.items()
                    if str(getattr(state, "value", state)) == "RUNNING"
                )
            self._running, self._running_at = running, time.monotonic()
        return self._running

    async def _handle(self, app: str) -> Any:
        handle = self._handles.get(app)
        if handle is None:
            try:
                handle = serve.get_app_handle(app)  # one controller call, then cached
            except Exception as exc:  # gone since Serve's status was read
                raise PlatformUnavailable(f"application '{app}' is not running") from exc
            self._handles[app] = handle
        return handle

    async def _call(
        self, app: str, method: str, *args: Any, timeout_s: float = ANSWER_TIMEOUT_S
    ) -> Any:
        """A handle call to ``app``'s ingress, bounded: a replica gone is a 503."""
        handle = await self._handle(app)
        try:
            return await asyncio.wait_for(getattr(handle, method).remote(*args), timeout=timeout_s)
        except MaasError:
            raise
        except Exception as exc:
            self._handles.pop(app, None)
            logger.warning("application %s did not answer %s", app, method, exc_info=True)
            raise PlatformUnavailable(
                f"'{app}' did not answer: its replicas may be restarting; retry shortly"
            ) from exc

    async def _describe_version(
        self, name: str, own: bool, pool_version: str | None, asked: str | None
    ) -> dict[str, Any]:
        """``describe()`` of the version asked for (None: the one a call goes to)."""
        if not own:
            version = str(pool_version)
            if asked is not None and asked != version:
                raise VersionNotDeployed(name, asked)
            return await self._pool_describe(name, version)
        cached = self._primary.get(name)
        if cached is None or time.monotonic() - cached[0] > PRIMARY_TTL_S:
            primary = await self._call(name, "describe")
            cached = self._primary[name] = (time.monotonic(), primary)
            self._described[(name, primary["version"])] = primary
        primary = cached[1]
        if asked is None or asked == primary["version"]:
            return primary
        if await self._canary_version(name) != asked:
            raise VersionNotDeployed(name, asked)
        return self._described[(name, asked)]

    async def _answered_by(
        self, name: str, own: bool, version: str | None, answered: str, asked: dict[str, Any]
    ) -> dict[str, Any]:
        """``describe()`` of the version that answered when it is not the one the request
        was decoded for: the canary's, or, after a promote within the cache's seconds,
        the new primary's. A version not found (gone since) keeps ``asked``'s outputs:
        an answer is never dropped for its metadata."""
        found = self._described.get((name, answered))
        if found is not None:
            return found
        self._primary.pop(name, None)
        self._challenger.pop(name, None)
        try:
            return await self._describe_version(name, own, version, answered)
        except MaasError:
            return asked

    async def _canary_version(self, name: str) -> str | None:
        """The version of the model's challenger (canary or shadow) application, if any."""
        app = challenger_app(name)
        if not (await self._applications()).get(app):
            return None
        cached = self._challenger.get(name)
        if cached is None or time.monotonic() - cached[0] > PRIMARY_TTL_S:
            described = await self._call(app, "describe")
            self._described[(name, described["version"])] = described
            cached = self._challenger[name] = (time.monotonic(), str(described["version"]))
        return cached[1]

    async def _pool_describe(self, name: str, version: str) -> dict[str, Any]:
        key = (name, version)
        if key not in self._described:
            try:
                self._described[key] = await self.gateway.pool_describe(name, version)
            except MaasError:
                raise
            except Exception as exc:
                raise PlatformUnavailable(
                    f"model '{name}' version {version} is not ready yet in the shared pool"
                ) from exc
        return self._described[key]


@dataclass
class Target:
    """Who answers a model: its own replicas, or the shared pool's ``version``; and the
    ``describe()`` of the version a call without one goes to."""

    own: bool
    version: str | None
    described: dict[str, Any]


@dataclass
class Inferred:
    """An infer's outcome: ``status`` and ``out`` (the v1 answer, or its JSON error), the
    version that answered, headers to add; on a 200 its predictions and output schema,
    and with ``parameters.explain`` the explanation (``Explanations`` as JSON)."""

    status: int
    out: bytes
    version: str
    headers: dict[str, str]
    predictions: Any = None
    outputs_schema: Schema | None = None
    explanation: dict[str, Any] | None = None


def _json(doc: dict[str, Any], status: int = 200) -> Response:
    return Response(orjson.dumps(doc), status_code=status, media_type=JSON)
