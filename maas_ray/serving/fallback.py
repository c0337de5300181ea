"""Model requests in Serve's fallback proxy (haproxy mode): the warm pool answers them,
or they wait a bounded time.

HAProxy sends a model's requests to its replicas' own HTTP servers; while none of them
runs (the first deploy still starting, a version that cannot load, every replica gone)
it sends them to Serve's Python proxy instead, which holds each one until a replica
answers, with no limit. Seen: requests sent during a first deploy that failed were
answered a plain 500 after 120 s (when HAProxy's reloaded process was stopped), and a
client that gave up on such a request left HAProxy spinning a core until the request
ended. Here, in that proxy only, a model request without a limit of its own gets the
platform's (``MAAS_PREDICT_TIMEOUT_S``; ``MAAS_EXPLAIN_TIMEOUT_S`` for an explain) as
Serve's ``x-request-timeout-seconds``; Serve then gives up on it at the limit and its
408 becomes the platform's JSON 504 ``predict_timeout`` (Serve's other plain-text
answer here, a 503 for a deployment that failed, becomes JSON too).

Before that, a predict or explain goes to the gateway (``Gateway.pooled``): during a
model's first deploy the warm shared pool answers it with the model's version, as it
does before the model's application holds its route, so callers of a model whose
replicas are starting (or failing to load) get answers, not a wait. What the pool does
not answer (a replaced model, ``mask_fields``, another version) waits as above, and
its path is not asked about again for NOT_POOLED_S: a busy model's requests held while
its replicas restart do not all go through the gateway's one replica.

Ray calls ``middlewares`` (``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``, set by
``control/nodes.py``) in every process with an HTTP server: the proxies and each
replica's direct ingress. Only the fallback proxy gets the middleware, so the replicas'
hot path is unchanged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.middleware import Middleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from maas_ray.errors import MaasError, Overloaded, PlatformUnavailable, PredictTimeout
from maas_ray.routes import MODELS_PREFIX
from maas_ray.spec import GATEWAY_APP, GATEWAY_DEPLOYMENT
from maas_ray.wire import JSON

logger = logging.getLogger(__name__)
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
# (method, path, query string, headers, body) -> the pool's answer, or None
Pool = Callable[[str, str, bytes, list[tuple[bytes, bytes]], bytes], Awaitable[Answer | None]]

# A path the pool did not answer is not asked about again for this long: a busy model's
# requests held while its replicas restart must not flood the gateway (one replica).
NOT_POOLED_S = 1.0
# Serve's per-request limit (ray.serve._private.http_util), and the name of its actor.
TIMEOUT_HEADER = b"x-request-timeout-seconds"
FALLBACK_ACTOR = "SERVE_PROXY_ACTOR-fallback-"


def middlewares() -> list[Middleware]:
    """The fallback proxy's middleware; none anywhere else."""
    import ray

    try:
        name = ray.get_runtime_context().get_actor_name() or ""
    except Exception:  # noqa: BLE001 - not in an actor: no proxy to bound
        return []
    if not name.startswith(FALLBACK_ACTOR):
        return []
    from maas_ray.settings import Settings

    settings = Settings()
    return [
        Middleware(
            BoundedWait,
            predict_s=settings.predict_timeout_s,
            explain_s=settings.explain_timeout_s,
            pool=GatewayPool(),
            max_body=settings.max_body_bytes,
        )
    ]


class GatewayPool:
    """``Pool``: asks the gateway (``Gateway.pooled``) over a Serve handle."""

    def __init__(self) -> None:
        self.handle: object | None = None

    async def __call__(
        self, method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Answer | None:
        if self.handle is None:
            from ray import serve

            self.handle = serve.get_deployment_handle(GATEWAY_DEPLOYMENT, app_name=GATEWAY_APP)
        answer: Answer | None = await self.handle.pooled.remote(  # type: ignore[attr-defined]
            method, path, query, headers, body
        )
        return answer


class BoundedWait:
    """ASGI middleware: a model request goes to the pool first (``pool``); if the pool
    does not answer for it, it gets Serve's limit header unless it has one, and Serve's
    plain-text answers to it become JSON (``_Answer``)."""

    def __init__(
        self,
        app: ASGIApp,
        predict_s: float,
        explain_s: float,
        pool: Pool | None = None,
        max_body: int = 0,
    ) -> None:
        self.app, self.predict_s, self.explain_s = app, predict_s, explain_s
        self.pool, self.max_body = pool, max_body
        self.not_pooled: dict[tuple[str, str], float] = {}  # (method, path) -> until when

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or not path.startswith(MODELS_PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        limit = self.explain_s if path.rstrip("/").endswith("/explain") else self.predict_s
        if self.pool is not None and self._may_pool(scope):
            body, receive = await _buffered(receive, self.max_body)
            if body is not None and await self._pooled(scope, receive, send, body, limit):
                return
        headers = list(scope.get("headers") or [])
        if any(k.lower() == TIMEOUT_HEADER for k, _ in headers):
            await self.app(scope, receive, send)
            return
        scope = {**scope, "headers": [*headers, (TIMEOUT_HEADER, f"{limit:g}".encode())]}
        await self.app(scope, receive, _Answer(scope, receive, send, limit))

    def _may_pool(self, scope: Scope) -> bool:
        """Whether to ask the pool (not when it said no to the same path just before)."""
        until = self.not_pooled.get((scope["method"], scope["path"]))
        return until is None or until < time.monotonic()

    def _not_pooled(self, scope: Scope) -> None:
        if len(self.not_pooled) > 10_000:  # bounded: paths carry model names and versions
            self.not_pooled.clear()
        self.not_pooled[(scope["method"], scope["path"])] = time.monotonic() + NOT_POOLED_S

    async def _pooled(
        self, scope: Scope, receive: Receive, send: Send, body: bytes, limit: float
    ) -> bool:
        """Send the pool's answer, if it has one within ``limit``; whether it did."""
        from maas_ray.http_io import error_response

        assert self.pool is not None
        asked = self.pool(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            list(scope.get("headers") or []),
            body,
        )
        try:
            answer = await asyncio.wait_for(asked, timeout=limit)
        except TimeoutError:
            said = _timeout(limit, "the warm pool did not answer the model's first deploy")
            await error_response(said)(scope, receive, send)
            return True
        except Exception:  # noqa: BLE001 - the gateway not running: wait for a replica
            logger.warning("the gateway did not answer for the pool", exc_info=True)
            self._not_pooled(scope)
            return False
        if answer is None:
            self._not_pooled(scope)
            return False
        status, headers, content = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})
        return True


async def _buffered(receive: Receive, most: int) -> tuple[bytes | None, Receive]:
    """The request's body (None: the client left, or it is over ``most`` bytes, and the
    pool would refuse it anyway) and a ``receive`` that gives the same messages again."""
    seen: list[Message] = []
    size, complete = 0, False
    while not complete:
        message = await receive()
        seen.append(message)
        if message["type"] != "http.request":
            break
        size += len(message.get("body", b""))
        complete = not message.get("more_body", False)
        if most and size > most:
            break
    replay = iter(seen)

    async def again() -> Message:
        return next(replay, None) or await receive()

    if not complete:
        return None, again
    return b"".join(m.get("body", b"") for m in seen), again


class _Answer:
    """``send`` that turns Serve's own plain-text answers into the platform's JSON: its
    408 for a request past the limit (a 504 ``predict_timeout``), and its 503 for a
    model with no replica left to try (a deployment that failed: ``platform_unavailable``;
    a full queue, with ``Retry-After``: ``overloaded``)."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, limit: float) -> None:
        self.scope, self.receive, self.send, self.limit = scope, receive, send, limit
        self.held: Message | None = None  # Serve's start line, while its body is read
        self.text = b""

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start" and _serves_own(message):
            self.held = message
            return
        if self.held is None:
            await self.send(message)
            return
        self.text += message.get("body", b"")
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await self._send_json(self.held)

    async def _send_json(self, start: Message) -> None:
        from maas_ray.http_io import error_response

        retry_after = dict(start.get("headers") or []).get(b"retry-after")
        error: MaasError
        if start["status"] == 408:
            error = _timeout(self.limit)
        elif retry_after is not None:
            error = Overloaded()
        else:
            said = self.text.decode(errors="replace").strip()
            error = PlatformUnavailable(
                f"no replica of this model runs ({said}); `maas status` shows why"
            )
        headers = {"retry-after": retry_after.decode()} if retry_after is not None else None
        await error_response(error, headers)(self.scope, self.receive, self.send)


def _serves_own(start: Message) -> bool:
    """Whether a response start is Serve's own plain-text 408 or 503 (the platform's
    answers are JSON)."""
    if start.get("status") not in (408, 503):
        return False
    kind = dict(start.get("headers") or []).get(b"content-type", b"")
    return not kind.startswith(JSON.encode())


def _timeout(
    limit: float, who: str = "no replica of this model took the request"
) -> PredictTimeout:
    return PredictTimeout(
        f"no answer within {limit:g} s (MAAS_PREDICT_TIMEOUT_S, MAAS_EXPLAIN_TIMEOUT_S for "
        f"an explain): {who} in time; while its replicas start (or fail to start) "
        "requests wait for them. `maas status` shows the deployment's state"
    )
