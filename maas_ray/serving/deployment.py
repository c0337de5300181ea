"""The Ray Serve deployment that serves one model version over HTTP.

Its routes are the table's ``model`` routes (``maas_ray/routes/``): predict,
version predict, explain, metadata, traffic. One hop from the Serve proxy to this code.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson
from ray import serve
from ray.serve import metrics
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import (
    MaasError,
    MethodNotAllowed,
    NotFound,
    VersionNotDeployed,
    answered,
)
from maas_ray.http_io import UNEXPECTED, encode_error, error_response, read_body
from maas_ray.monitoring.link import ROUTES as MONITORING_ROUTES
from maas_ray.monitoring.link import AdminLink
from maas_ray.monitoring.log import PredictionLog
from maas_ray.registry import Registry
from maas_ray.registry.cache import ModelCache
from maas_ray.routes import Match, match
from maas_ray.security.auth import Guard
from maas_ray.security.log_masking import install_replica_logging, mask_fields_in_text
from maas_ray.security.masking import mask_text
from maas_ray.serving import reserve
from maas_ray.serving.answer_counts import AnswerCounts
from maas_ray.serving.explaining import Explaining
from maas_ray.serving.grpc_elsewhere import GrpcElsewhere
from maas_ray.serving.runtime import ModelRuntime, bounded
from maas_ray.serving.split import Mirrored, TrafficSplit
from maas_ray.settings import Settings
from maas_ray.spec import Batching, Traffic
from maas_ray.wire import JSON, REQUEST_ID_HEADER, VERSION_HEADER

logger = logging.getLogger(__name__)

# A predict that usually takes less than this runs on the replica's event loop:
# a thread hop costs more than the call (it halved throughput on the examples).
# 10 ms, not less: under load a 1 ms predict measures several ms (a shared CPU).
INLINE_BELOW_S = 0.01
INLINE_BODY_MAX = 64 * 1024  # larger bodies are parsed in a thread


# Serve calls check_health every second; three in a row that raise or take over 10 s
# replace the replica: a bad one is found in about 3 s, and its replacement's start
# (7-10 s here) decides the rest.
@serve.deployment(
    name="ModelServer", max_ongoing_requests=64, health_check_period_s=1, health_check_timeout_s=10
)
class ModelServer(GrpcElsewhere, Explaining):
    """Wraps one registered model version: load verified, validate, predict.

    As a primary whose user_config names a canary or shadow, it reaches the
    challenger's application (same class, another version) through a handle: with
    a canary it forwards a share of the requests there; with a shadow it mirrors a
    share there after answering, and the challenger records how often the two
    agree. The split changes by reconfigure, without a new replica; ``self.split``
    (``split.py``) holds it, the handle, the mirror queue and the counts.
    """

    def __init__(
        self,
        model: str,
        version: str,
        tracking_uri: str,
        background: bool = False,
        batching: dict[str, Any] | None = None,
        inline: bool = True,
        mask_fields: list[str] | None = None,
        arm: str = "production",
        log_percent: float | None = None,
        predict_timeout_s: float | None = None,
    ) -> None:
        settings = Settings()
        self.timeout_s = predict_timeout_s or settings.predict_timeout_s
        self.explain_timeout_s = settings.explain_timeout_s
        self.explain_share = settings.explain_share
        install_replica_logging()
        self.guard = Guard(settings)
        self.max_body = settings.max_body_bytes
        self.mask_fields = list(mask_fields or [])
        if background:
            # A shadow's work is best effort: at a lower CPU priority it takes only
            # what the primary and the proxy leave, so callers do not wait for it.
            os.nice(10)
        self.runtime = ModelRuntime.load(
            Registry(tracking_uri), model, version, settings.json_max_depth, ModelCache.of(settings)
        )
        reserve.replenish(settings.worker_reserve)  # for the next replica on this node
        self._headers = {VERSION_HEADER: version}
        self.batching = Batching.model_validate(batching) if batching else None
        if self.batching is not None and self.batching.max_batch_size < 2:
            self.batching = None  # a batch of one is no batching: skip the queue
        if self.batching is not None:
            # serve.batch wraps the method in an object with these setters.
            batched: Any = self._batched
            batched.set_max_batch_size(self.batching.max_batch_size)
            batched.set_batch_wait_timeout_s(self.batching.batch_wait_timeout_s)
        # Fast predicts run on the event loop unless the deployment autoscales: Serve
        # samples in-flight requests between two of them, when the replica looks
        # idle, so queueing (in HAProxy) would never scale it up.
        self.inline = inline
        self.split = TrafficSplit(self.runtime.name, self.runtime.version)
        # What this replica answers, sampled into the prediction log (monitoring/log.py).
        self.arm = arm
        self.log = PredictionLog(
            model, tracking_uri, percent=log_percent, mask_fields=self.mask_fields
        )
        self.log.challenged(arm != "production")  # a canary or shadow logs everything
        self.admin = AdminLink(self.max_body)
        # Exported with Serve's metrics (Prometheus): which version answered, how.
        self.answers = AnswerCounts(self.runtime.name)
        self._batch_sizes = metrics.Histogram(
            "maas_batch_size",
            description="Requests per model call of a batching replica.",
            boundaries=[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024],
            tag_keys=("model", "version"),  # type: ignore[arg-type]
        )
        self._predict_s = float("inf")  # moving average of one predict call; inf: unknown

    def __del__(self) -> None:
        """Serve calls this once when the replica stops gracefully (a promote, a
        rollback, a scale-down, an undeploy): the prediction log's buffer is written
        first, so only a replica that dies loses what it held (garbage collection may
        call it again: nothing is left to write then)."""
        log = self.__dict__.get("log")
        if log is not None:
            log.close()

    def reconfigure(self, config: dict[str, Any] | None) -> None:
        """Serve's user_config: the traffic split (``{"canary": ..., "shadow": ...}``)."""
        self.split.reconfigure(Traffic.model_validate(config or {}))
        if self.arm == "production":
            self.log.challenged(self.split.version is not None)

    async def check_health(self) -> None:
        """Serve's health check: the version still predicts its input example (off the
        event loop, so a slow model does not hold up requests)."""
        await asyncio.get_running_loop().run_in_executor(None, self.runtime.healthy)

    # -- handle API ------------------------------------------------------------
    async def predict(
        self,
        payload: dict[str, Any],
        request_id: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """For Serve handles: a scoring-format dict in, ``{"predictions", "version",
        "request_id"}`` out.

        ``serve.get_app_handle(name).predict.remote({"inputs": [...]})``. The same path
        as HTTP: a canary's share is forwarded to it (``headers`` may carry its sticky
        header), a shadow is mirrored, the answer is logged under ``request_id`` (a new
        UUID when none). Errors are raised as the MaasError an HTTP caller would get
        as JSON (a canary's as a RemoteError with its status and code).
        """
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        rid = request_id or str(uuid.uuid4())
        status, out, version = await self._serve(body, JSON, rid, None, headers or {})
        return {**answered(status, out), "version": version, "request_id": rid}

    async def serve_payload(
        self,
        payload: dict[str, Any],
        request_id: str,
        headers: dict[str, str],
        version: str | None = None,
    ) -> tuple[int, bytes, str]:
        """``predict`` for the gateway's OIP v2 route, never raising: (HTTP status, JSON
        answer or error, the version that answered). ``version``: the one asked for
        (``/versions/{v}/``), the primary's or the canary's."""
        body = b""
        try:
            if version is not None and version not in (self.runtime.version, self.split.version):
                raise VersionNotDeployed(self.runtime.name, version)
            body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
            return await self._serve(body, JSON, request_id, version, headers)
        except MaasError as exc:
            return self._refused(exc, body)

    def _refused(self, exc: MaasError, body: bytes) -> tuple[int, bytes, str]:
        """A payload call's error answer: (status, JSON error, masked where the spec says,
        this replica's version)."""
        record = orjson.loads(body) if self.mask_fields and body else None
        return exc.status_code, self._masked(exc, record) or encode_error(exc), self.runtime.version

    async def answer(
        self, body: bytes, content_type: str | None, request_id: str | None = None
    ) -> tuple[int, bytes]:
        """A predict over a handle that never raises: (HTTP status, JSON body).

        With ``request_id`` (a primary forwarding to its canary, a mirrored request)
        the answer goes into this replica's prediction log under its arm.
        """
        started = time.perf_counter()
        try:
            status, out = 200, await self._predict(body, content_type)
        except MaasError as exc:
            status, out = exc.status_code, encode_error(exc)
        if request_id is not None:
            took = time.perf_counter() - started
            self.log.record(
                request_id, self.runtime.version, self.arm, status, took, body, content_type, out
            )
        return status, out

    async def compare(self, mirrored: list[Mirrored]) -> None:
        """Shadow side: predict on mirrored requests, count agreement with the primary.

        ``mirrored`` holds (body, content type, primary's answer, request id) per request.
        """
        for body, content_type, primary, request_id in mirrored:
            status, out = await self.answer(body, content_type, request_id)
            self.split.record(status, primary, out)

    async def stats(self) -> dict[str, Any]:
        """What this replica saw: answers by version, and shadow agreement."""
        return self.split.stats()

    # -- HTTP ------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        try:
            path = request.scope["path"]
            found = match(request.method, path)
            self.guard.check(request.method, path, request.headers.get("authorization"), found)
            response = await self._route(request, found)
        except MaasError as exc:
            record = None
            if self.mask_fields and hasattr(request.state, "body"):
                try:
                    record = orjson.loads(request.state.body)
                except orjson.JSONDecodeError:
                    record = None
            response = error_response(exc, self._headers, self._masked(exc, record))
            rid = request.headers.get(REQUEST_ID_HEADER, "-")
            logger.info(
                "request %s: %s answered %d %s", rid, request.method, exc.status_code, exc.code
            )
        except Exception:
            # A bug of ours: still a JSON answer, and the trace in the replica's log.
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
            response = error_response(UNEXPECTED, self._headers)
        version = response.headers.get(VERSION_HEADER, self.runtime.version)
        self.answers.add(version, response.status_code)
        return response

    def _masked(self, exc: MaasError, record: Any) -> bytes | None:
        """The error body with the spec's ``mask_fields`` values (as ``record``, the
        request's payload, holds them) masked (None: no fields)."""
        if not self.mask_fields:
            return None
        data = exc.to_dict()
        data["error"] = mask_fields_in_text(mask_text(data["error"]), record, self.mask_fields)
        return orjson.dumps(data)

    async def _route(self, request: Request, found: Match) -> Response:
        route, path = found.route, request.scope["path"]
        if route is None or route.app != "model":
            raise NotFound(f"no route {request.method} {path}")
        if not found.allowed:
            raise MethodNotAllowed(request.method, path, found.methods)
        version = self.runtime.version
        target = found.params.get("version")  # None: the router decides
        if target is not None and target not in (version, self.split.version):
            raise VersionNotDeployed(self.runtime.name, target)
        if route.name in ("predict", "predict_version"):
            return await self._serve_predict(request, target)
        if route.name in ("explain", "explain_version"):
            return await self._serve_explain(request, target)
        if route.name in MONITORING_ROUTES:
            return await self.admin.answer(route.name, self.runtime.name, request)
        if route.name == "traffic":
            return Response(orjson.dumps(await self.split.report()), media_type=JSON)
        handle = self.split.handle if target is not None and target != version else None
        if handle is not None:
            return Response(orjson.dumps(await handle.describe.remote()), media_type=JSON)
        return Response(orjson.dumps(self.describe()), media_type=JSON, headers=self._headers)

    def describe(self) -> dict[str, Any]:
        """Name, version and input schema of the loaded version."""
        return self.runtime.describe()

    async def _serve_predict(self, request: Request, target: str | None) -> Response:
        body = await read_body(request, self.max_body)
        if self.mask_fields:
            request.state.body = body  # for masking its values out of an error message
        ctype = request.headers.get("content-type")
        # Serve's ingress sets x-request-id (the client's own, else a new UUID) on the
        # request and echoes it on the answer; a direct caller (tests) may have none.
        request_id = request.headers.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
        status, out, version = await self._serve(body, ctype, request_id, target, request.headers)
        if version != self.runtime.version:  # the canary answered
            return Response(
                out, status_code=status, media_type=JSON, headers={VERSION_HEADER: version}
            )
        return Response(out, media_type=JSON, headers=self._headers)

    async def _serve(
        self,
        body: bytes,
        ctype: str | None,
        request_id: str,
        target: str | None,
        headers: Mapping[str, str],
    ) -> tuple[int, bytes, str]:
        """One predict as a caller sees it, over HTTP or a handle: (status, answer, the
        version that answered). The canary's share goes to it (its answer, errors
        included, is its own); else this version answers, logged, a shadow mirrored;
        its errors are raised."""
        split = self.split
        challenger = split.pick(target, headers)
        if challenger is not None:
            status, out = await split.forward(body, ctype, request_id)
            if status is not None:  # the challenger logged it as the canary's answer
                split.answered[challenger] += 1
                return status, out, challenger
        started = time.perf_counter()
        version = self.runtime.version
        try:
            out = await self._predict(body, ctype)
        except MaasError as exc:
            took = time.perf_counter() - started
            answer = encode_error(exc)
            self.log.record(
                request_id, version, self.arm, exc.status_code, took, body, ctype, answer
            )
            raise
        self.log.record(
            request_id, version, self.arm, 200, time.perf_counter() - started, body, ctype, out
        )
        split.answered[version] += 1
        if split.shadow is not None:  # checked here too: no call per request without one
            split.mirror(body, ctype, out, request_id)
        return 200, out, version

    async def _predict(self, body: bytes, ctype: str | None) -> bytes:
        loop = asyncio.get_running_loop()
        small = len(body) <= INLINE_BODY_MAX
        if self.batching is None:
            if self.inline and small and self._predict_s < INLINE_BELOW_S:
                return self._timed(self.runtime.predict_bytes, body, ctype)
            # Slow model code or a big body: keep the replica's event loop free.
            work = loop.run_in_executor(None, self._timed, self.runtime.predict_bytes, body, ctype)
            return await bounded(work, self.timeout_s, self.runtime)
        if small:
            data = self.runtime.parse(body, ctype)
        else:
            data = await loop.run_in_executor(None, self.runtime.parse, body, ctype)
        answer = await bounded(self._batched(data), self.timeout_s, self.runtime)
        if isinstance(answer, MaasError):
            raise answer
        return answer

    def _timed(self, predict: Any, body: bytes, ctype: str | None) -> bytes:
        """Run ``predict`` and fold its duration into the moving average (errors too)."""
        started = time.perf_counter()
        try:
            return predict(body, ctype)
        finally:
            took = time.perf_counter() - started
            self._predict_s = (
                took if math.isinf(self._predict_s) else 0.9 * self._predict_s + 0.1 * took
            )

    # Two batches in flight: while one runs in a thread (torch releases the GIL), the
    # next one gathers and starts, so a replica uses a second core instead of idling it.
    @serve.batch(max_batch_size=8, batch_wait_timeout_s=0.005, max_concurrent_batches=2)
    async def _batched(self, inputs: list[Any]) -> list[bytes | MaasError]:
        """Parsed inputs of concurrent requests, predicted together (sizes from the spec)."""
        loop = asyncio.get_running_loop()
        tags = {"model": self.runtime.name, "version": self.runtime.version}
        self._batch_sizes.observe(len(inputs), tags=tags)  # once a batch: cheap
        self.log.batch(self.runtime.version, self.arm, len(inputs))
        answers: list[bytes | MaasError] = await loop.run_in_executor(
            None, self.runtime.predict_many, inputs
        )
        return answers
