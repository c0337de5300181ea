"""The Ray Serve deployment that serves one model version over HTTP.

Its routes are the table's ``model`` routes (``maas_ray/routes.py``): predict,
version predict, metadata, traffic. One hop from the Serve proxy to this code.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import Counter
from typing import Any

import orjson
from ray import serve
from ray.serve import metrics
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import MaasError, MethodNotAllowed, NotFound, VersionNotDeployed
from maas_ray.registry import Registry
from maas_ray.routes import Match, match
from maas_ray.security.auth import Guard
from maas_ray.security.masking import install_log_masking, mask_fields_in_text, mask_text
from maas_ray.serving.http import UNEXPECTED, encode_error, error_response, read_body
from maas_ray.serving.runtime import ModelRuntime
from maas_ray.serving.traffic import agreement, to_challenger
from maas_ray.settings import Settings
from maas_ray.spec import Batching, Canary, Shadow, Traffic, challenger_app
from maas_ray.wire import JSON, VERSION_HEADER

logger = logging.getLogger(__name__)

MIRROR_EVERY_S = 0.05
MIRROR_QUEUE_MAX = 1000
METRICS_EVERY_S = 1.0
# A predict that usually takes less than this runs on the replica's event loop:
# a thread hop costs more than the call (it halved throughput on the examples).
# 10 ms, not less: under load a 1 ms predict measures several ms (a shared CPU).
INLINE_BELOW_S = 0.01
INLINE_BODY_MAX = 64 * 1024  # larger bodies are parsed in a thread


@serve.deployment(name="ModelServer", max_ongoing_requests=64, health_check_period_s=10)
class ModelServer:
    """Wraps one registered model version: load verified, validate, predict.

    As a primary whose user_config names a canary or shadow, it reaches the
    challenger's application (same class, another version) through a handle: with
    a canary it forwards a share of the requests there; with a shadow it mirrors a
    share there after answering, and the challenger records how often the two
    agree. The split changes by reconfigure, without a new replica.
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
    ) -> None:
        settings = Settings()
        install_log_masking()
        self.guard = Guard(settings)
        self.max_body = settings.max_body_bytes
        self.mask_fields = list(mask_fields or [])
        if background:
            # A shadow's work is best effort: at a lower CPU priority it takes only
            # what the primary and the proxy leave, so callers do not wait for it.
            os.nice(10)
        self.runtime = ModelRuntime.load(
            Registry(tracking_uri), model, version, settings.json_max_depth
        )
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
        self._challenger: DeploymentHandle | None = None  # made on first use
        self._next_lookup = 0.0
        self.canary: Canary | None = None  # set by reconfigure (user_config)
        self.shadow: Shadow | None = None
        self.answered: Counter[str] = Counter()  # version -> requests answered here
        # Exported with Serve's metrics (Prometheus): which version answered, how.
        self._requests = metrics.Counter(
            "maas_requests",
            description="Requests answered by a model version, by HTTP status.",
            # Ray annotates tag_keys as Tuple[str] (one element); any length works.
            tag_keys=("model", "version", "status"),  # type: ignore[arg-type]
        )
        self._counts: Counter[tuple[str, str]] = Counter()  # (version, status) since flush
        self._metrics_task: asyncio.Task[None] | None = None
        self._predict_s = float("inf")  # moving average of one predict call; inf: unknown
        self.agreement = {"requests": 0, "rows": 0, "agree": 0, "errors": 0, "dropped": 0}
        self._queue: list[tuple[bytes, str | None, bytes]] = []  # waiting for the shadow
        self._flusher: asyncio.Task[None] | None = None

    def reconfigure(self, config: dict[str, Any] | None) -> None:
        """Serve's user_config: the traffic split (``{"canary": ..., "shadow": ...}``)."""
        traffic = Traffic.model_validate(config or {})
        self.canary, self.shadow = traffic.canary, traffic.shadow
        if self.canary is None and self.shadow is None:
            self._challenger = None  # a later canary gets a handle of its own

    @property
    def challenger(self) -> DeploymentHandle | None:
        """A handle to the canary's or shadow's application while one is set."""
        if self.canary is None and self.shadow is None:
            return None
        if self._challenger is None and time.monotonic() >= self._next_lookup:
            # Until the challenger's application exists (a restore starts both at
            # once), this primary answers everything itself; looked up once a second.
            self._next_lookup = time.monotonic() + 1.0
            try:
                self._challenger = serve.get_deployment_handle(
                    "ModelServer", app_name=challenger_app(self.runtime.name)
                )
            except Exception:
                logger.info("the challenger of %s is not there yet", self.runtime.name)
        return self._challenger

    # -- handle API ------------------------------------------------------------
    async def predict(self, payload: dict[str, Any]) -> dict[str, Any]:
        """For Serve handles: a scoring-format dict in, ``{"predictions", "version"}`` out.

        ``serve.get_app_handle(name).predict.remote({"inputs": [...]})``; errors are
        raised as the same MaasError an HTTP caller would get as JSON.
        """
        body = orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)
        out = await self._predict(body, JSON)
        return {**orjson.loads(out), "version": self.runtime.version}

    async def answer(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """A predict over a handle that never raises: (HTTP status, JSON body)."""
        try:
            return 200, await self._predict(body, content_type)
        except MaasError as exc:
            return exc.status_code, encode_error(exc)

    async def compare(self, mirrored: list[tuple[bytes, str | None, bytes]]) -> None:
        """Shadow side: predict on mirrored requests, count agreement with the primary.

        ``mirrored`` holds (body, content type, primary's answer) per request.
        """
        for body, content_type, primary in mirrored:
            status, out = await self.answer(body, content_type)
            # Counted only once compared, so a reader never sees a request without its rows.
            self.agreement["requests"] += 1
            if status != 200:
                self.agreement["errors"] += 1
                continue
            same, rows = agreement(
                orjson.loads(primary)["predictions"], orjson.loads(out)["predictions"]
            )
            self.agreement["agree"] += same
            self.agreement["rows"] += rows

    async def stats(self) -> dict[str, Any]:
        """What this replica saw: answers by version, and shadow agreement."""
        return {"answered": dict(self.answered), "shadow": dict(self.agreement)}

    # -- HTTP ------------------------------------------------------------------------
    async def __call__(self, request: Request) -> Response:
        try:
            path = request.scope["path"]
            found = match(request.method, path)
            self.guard.check(request.method, path, request.headers.get("authorization"), found)
            response = await self._route(request, found)
        except MaasError as exc:
            response = error_response(exc, self._headers, self._masked(exc, request))
        except Exception:
            # A bug of ours: still a JSON answer, and the trace in the replica's log.
            logger.exception("unexpected error on %s %s", request.method, request.url.path)
            response = error_response(UNEXPECTED, self._headers)
        self._count(response)
        return response

    def _masked(self, exc: MaasError, request: Request) -> bytes | None:
        """The error body with the spec's ``mask_fields`` values masked (None: no fields)."""
        if not self.mask_fields:
            return None
        body = request.state.body if hasattr(request.state, "body") else b""
        try:
            record = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            record = None
        data = exc.to_dict()
        data["error"] = mask_fields_in_text(mask_text(data["error"]), record, self.mask_fields)
        return orjson.dumps(data)

    def _count(self, response: Response) -> None:
        """Count an answer for the metrics; flushed every METRICS_EVERY_S.

        One metrics call per request cost ~30% of throughput; one per second and
        (version, status) costs nothing measurable.
        """
        version = response.headers.get(VERSION_HEADER, self.runtime.version)
        self._counts[(version, str(response.status_code))] += 1
        if self._metrics_task is None or self._metrics_task.done():
            self._metrics_task = asyncio.get_running_loop().create_task(self._flush_metrics())

    async def _flush_metrics(self) -> None:
        while self._counts:
            await asyncio.sleep(METRICS_EVERY_S)
            counts, self._counts = self._counts, Counter()
            for (version, status), n in counts.items():
                self._requests.inc(
                    n, tags={"model": self.runtime.name, "version": version, "status": status}
                )

    async def _route(self, request: Request, found: Match) -> Response:
        route, path = found.route, request.scope["path"]
        if route is None or route.app != "model":
            raise NotFound(f"no route {request.method} {path}")
        if not found.allowed:
            raise MethodNotAllowed(request.method, path, found.methods)
        version = self.runtime.version
        target = found.params.get("version")  # None: the router decides
        if target is not None and target not in (version, self._challenger_version()):
            raise VersionNotDeployed(self.runtime.name, target)
        if route.name in ("predict", "predict_version"):
            return await self._serve_predict(request, target)
        if route.name == "traffic":
            return Response(orjson.dumps(await self._traffic()), media_type=JSON)
        if target is not None and target != version and self.challenger is not None:
            return Response(orjson.dumps(await self.challenger.describe.remote()), media_type=JSON)
        return Response(orjson.dumps(self.describe()), media_type=JSON, headers=self._headers)

    def describe(self) -> dict[str, Any]:
        """Name, version and input schema of the loaded version."""
        return self.runtime.describe()

    async def _serve_predict(self, request: Request, target: str | None) -> Response:
        body = await read_body(request, self.max_body)
        if self.mask_fields:
            request.state.body = body  # for masking its values out of an error message
        ctype = request.headers.get("content-type")
        challenger = self._challenger_version()
        if target is None and self.canary is not None and self.challenger is not None:
            sticky = request.headers.get(self.canary.sticky_header or "") or None
            if to_challenger(self.canary.percent, sticky):
                target = challenger
        if challenger is not None and target == challenger and self.challenger is not None:
            status, out = await self._forward(body, ctype)
            if status is not None:
                self.answered[challenger] += 1
                return Response(
                    out, status_code=status, media_type=JSON, headers={VERSION_HEADER: challenger}
                )
        out = await self._predict(body, ctype)
        self.answered[self.runtime.version] += 1
        if self.shadow is not None and self.challenger is not None:
            if to_challenger(self.shadow.percent):
                self._mirror(body, ctype, out)
        return Response(out, media_type=JSON, headers=self._headers)

    async def _forward(self, body: bytes, ctype: str | None) -> tuple[int | None, bytes]:
        assert self.challenger is not None
        try:
            status, out = await self.challenger.answer.remote(body, ctype)
            return status, out
        except Exception:
            # The challenger is going away (promote or rollback under way): the
            # primary answers instead of failing the request.
            logger.warning("challenger of %s did not answer", self.runtime.name, exc_info=True)
            return None, b""

    def _mirror(self, body: bytes, ctype: str | None, primary: bytes) -> None:
        """Queue one request for the shadow; a flusher sends the queue every MIRROR_EVERY_S.

        One handle call per batch instead of per request keeps the mirror's cost
        off the caller's path; past MIRROR_QUEUE_MAX queued requests, new ones are
        dropped (and counted) rather than slowing the primary down.
        """
        if len(self._queue) >= MIRROR_QUEUE_MAX:
            self.agreement["dropped"] += 1
            return
        self._queue.append((body, ctype, primary))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        assert self.challenger is not None
        while self._queue:
            await asyncio.sleep(MIRROR_EVERY_S)
            batch, self._queue = self._queue, []
            try:
                await self.challenger.compare.remote(batch)
            except Exception:
                logger.warning("shadow of %s failed", self.runtime.name, exc_info=True)

    async def _predict(self, body: bytes, ctype: str | None) -> bytes:
        loop = asyncio.get_running_loop()
        small = len(body) <= INLINE_BODY_MAX
        if self.batching is None:
            if self.inline and small and self._predict_s < INLINE_BELOW_S:
                return self._timed(self.runtime.predict_bytes, body, ctype)
            # Slow model code or a big body: keep the replica's event loop free.
            out: bytes = await loop.run_in_executor(
                None, self._timed, self.runtime.predict_bytes, body, ctype
            )
            return out
        if small:
            data = self.runtime.parse(body, ctype)
        else:
            data = await loop.run_in_executor(None, self.runtime.parse, body, ctype)
        answer = await self._batched(data)
        if isinstance(answer, MaasError):
            raise answer
        return answer

    def _timed(self, predict: Any, body: bytes, ctype: str | None) -> bytes:
        """Run ``predict`` and fold its duration into the moving average (errors too)."""
        started = time.perf_counter()
        try:
            out: bytes = predict(body, ctype)
            return out
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
        answers: list[bytes | MaasError] = await loop.run_in_executor(
            None, self.runtime.predict_many, inputs
        )
        return answers

    def _challenger_version(self) -> str | None:
        spec = self.canary or self.shadow
        return spec.version if spec else None

    async def _traffic(self) -> dict[str, Any]:
        mine = await self.stats()
        out: dict[str, Any] = {
            "model": self.runtime.name,
            "primary": self.runtime.version,
            "canary": self.canary.model_dump() if self.canary else None,
            "shadow": self.shadow.model_dump() if self.shadow else None,
            "answered": mine["answered"],
        }
        if self.shadow is not None and self.challenger is not None:
            out["agreement"] = (await self.challenger.stats.remote())["shadow"]
            out["agreement"]["dropped"] = self.agreement["dropped"]  # queue full here
        return out
