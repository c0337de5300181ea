"""The SDK's HTTP side: one authenticated client, route names in, JSON (or errors) out.

A long management action answers 202 with an operation; ``Transport.admin``
waits for it (polling ``/v1/admin/operations/{id}``, each new step reported to
``progress``) unless told not to, so the SDK's verbs still return their result.

Idempotent calls (every GET, predict, feedback) are tried again, up to
``MAAS_RETRIES`` times, when answered 503 or 429, or the ingress's plain 500 for a
replica that died mid-request, or when the connection fails:
after ``Retry-After`` when the answer gives one, else after a pause drawn at random
up to ``MAAS_RETRY_BACKOFF_S`` x 2^try ("full jitter", so clients that failed
together do not come back together), never longer than ``MAAS_RETRY_MAX_S``. A
request lost with its replica or connection (the ingress's plain 500, a failed
connection) is sent again at once the first time: another replica takes it, and
the pause would be most of what the caller waits (a replica SIGKILLed under load:
the requests it held were among the slowest of the event). A change (deploy,
register, ...) is never sent twice.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from typing import Any

import httpx
import orjson

from maas_ray.control.status import Operation
from maas_ray.errors import InvalidJSON, Overloaded, PlatformUnavailable, RemoteError
from maas_ray.routes import BY_NAME
from maas_ray.security.keys import client_key
from maas_ray.settings import Settings
from maas_ray.wire import ACTOR_HEADER, JSON

Progress = Callable[[str], None]
# Waiting on an operation: the deploy timeout (what the platform allows) plus slack.
_SLACK_S = 60.0
# First and longest pause between two polls: a deploy takes seconds, and the answer
# should follow its end closely (each poll is one small authenticated GET).
_POLL_S = (0.05, 0.25)
RETRIED_STATUS = frozenset({429, 503})
# Failures before the request reached the model (or of its connection): safe to retry
# for an idempotent call. A read timeout is not one: the call may still be running.
RETRIED_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.ReadError,
                  httpx.WriteError, httpx.RemoteProtocolError, httpx.PoolTimeout)  # fmt: skip


class Transport:
    """An httpx client with the caller's credential, against ``settings.serve_url``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.Client(timeout=settings.request_timeout_s, headers=headers(settings))

    def admin(
        self,
        route: str,
        body: Any = None,
        progress: Progress | None = None,
        params: dict[str, Any] | None = None,
        *,
        wait: bool = True,
        **path: str,
    ) -> Any:
        """One management call by route name; a long one's operation waited for (``wait``)."""
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {"content-type": JSON}
        found = BY_NAME[route]
        resp = self.request(found.method, found.url(**path), **kwargs)
        answer = decoded(resp)
        if not found.long:
            return answer
        op = Operation.model_validate(answer)
        return self.wait(op, progress) if wait else op

    def operation(self, op_id: str) -> Operation:
        """An operation as the platform has it now."""
        return Operation.model_validate(self.admin("operation", op_id=op_id))

    def wait(self, op: Operation, progress: Progress | None = None) -> Any:
        """The result of ``op`` once it is done; its error raised as a RemoteError."""
        deadline = time.monotonic() + self.settings.deploy_timeout_s + _SLACK_S
        seen, pause = 0, _POLL_S[0]
        while True:
            if progress is not None:
                for step in op.steps[seen:]:
                    progress(step)
            seen = len(op.steps)
            if op.done:
                break
            if time.monotonic() > deadline:
                raise PlatformUnavailable(
                    f"operation {op.id} ({op.action} {op.target}) still {op.state} after "
                    f"{self.settings.deploy_timeout_s + _SLACK_S:.0f}s; "
                    f"MaaS().operation('{op.id}') tells how it goes"
                )
            time.sleep(pause)
            pause = min(pause * 1.5, _POLL_S[1])
            op = self.operation(op.id)
        if op.error is not None:
            raise RemoteError(
                str(op.error.get("error", "")),
                status_code=int(op.error.get("status", 500)),
                remote_code=str(op.error.get("code", "unknown")),
            )
        return op.result

    def send(
        self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        """One HTTP call that answers a JSON object (``idempotent``: retried, see above)."""
        resp = self.request(method, path, idempotent=idempotent, **kwargs)
        data = decoded(resp)
        return (data if isinstance(data, dict) else {"predictions": data}), resp

    def request(
        self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any
    ) -> httpx.Response:
        """One HTTP call; errors become PlatformUnavailable or RemoteError. A GET, or a
        call marked ``idempotent``, is retried on 503, 429 and connection failures."""
        tries = attempts(self.settings, method, idempotent)
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                resp = self.http.request(method, f"{self.settings.serve_url}{path}", **kwargs)
            except RETRIED_ERRORS as exc:
                if last:
                    raise unavailable(self.settings, exc) from exc
                time.sleep(pause(attempt, None, self.settings, lost_request=True))
                continue
            except httpx.HTTPError as exc:
                raise unavailable(self.settings, exc) from exc
            if not retried(resp) or last:
                break
            time.sleep(pause(attempt, resp.headers.get("retry-after"), self.settings, lost(resp)))
        return checked(self.settings, resp)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncTransport:
    """``Transport``'s calls for asyncio code (``AsyncMaaS``): one httpx.AsyncClient,
    the same credential, errors and retries."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=settings.request_timeout_s, headers=headers(settings))

    async def admin(self, route: str, params: dict[str, Any] | None = None, **path: str) -> Any:
        """One read of the management API by route name (GETs only: changes stay in MaaS)."""
        found = BY_NAME[route]
        assert found.method == "GET", route
        return decoded(await self.request("GET", found.url(**path), params=params))

    async def send(
        self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any
    ) -> tuple[dict[str, Any], httpx.Response]:
        resp = await self.request(method, path, idempotent=idempotent, **kwargs)
        data = decoded(resp)
        return (data if isinstance(data, dict) else {"predictions": data}), resp

    async def request(
        self, method: str, path: str, *, idempotent: bool = False, **kwargs: Any
    ) -> httpx.Response:
        tries = attempts(self.settings, method, idempotent)
        for attempt in range(tries):
            last = attempt == tries - 1
            try:
                resp = await self.http.request(method, f"{self.settings.serve_url}{path}", **kwargs)
            except RETRIED_ERRORS as exc:
                if last:
                    raise unavailable(self.settings, exc) from exc
                await asyncio.sleep(pause(attempt, None, self.settings, lost_request=True))
                continue
            except httpx.HTTPError as exc:
                raise unavailable(self.settings, exc) from exc
            if not retried(resp) or last:
                break
            wait = pause(attempt, resp.headers.get("retry-after"), self.settings, lost(resp))
            await asyncio.sleep(wait)
        return checked(self.settings, resp)

    async def aclose(self) -> None:
        await self.http.aclose()


def headers(settings: Settings) -> dict[str, str]:
    """What every call of the CLI and SDK carries: the actor and the credential."""
    secret = settings.api_key.get_secret_value() if settings.api_key else None
    out = {ACTOR_HEADER: settings.who}
    key = client_key(secret, settings.admin_key_file)
    if key is not None:
        out["authorization"] = f"Bearer {key}"
    return out


def retried(resp: httpx.Response) -> bool:
    """Whether an idempotent call answered ``resp`` is sent again: a 503 or 429, or a 500
    that is not the platform's (whose errors are JSON) but the ingress's own page for a
    replica that went away mid-request (HAProxy answers 502/503/504 as a plain 500)."""
    return resp.status_code in RETRIED_STATUS or lost(resp)


def lost(resp: httpx.Response) -> bool:
    """Whether ``resp`` is the ingress's plain 500 for a request lost with its replica
    (not the platform's own 500, which is JSON)."""
    return resp.status_code == 500 and not resp.content.lstrip().startswith(b"{")


def attempts(settings: Settings, method: str, idempotent: bool) -> int:
    """How many times a call is sent at most: retried only when it is idempotent."""
    return 1 + (settings.retries if idempotent or method == "GET" else 0)


def unavailable(settings: Settings, exc: Exception) -> PlatformUnavailable:
    return PlatformUnavailable(
        f"the platform at {settings.serve_url} does not answer "
        f"({exc.__class__.__name__}); is it up? run `maas up`"
    )


def checked(settings: Settings, resp: httpx.Response) -> httpx.Response:
    """The answer, or its error as a RemoteError (status and code kept)."""
    if resp.status_code >= 400:
        data = decoded(resp, check=False)
        data = data if isinstance(data, dict) else {}
        message = str(data.get("error", resp.text))
        code = str(data.get("code", "unknown"))
        if resp.status_code == 401:
            message += f"; the CLI and SDK send MAAS_API_KEY, else {settings.admin_key_file}"
        elif resp.status_code == 503 and not data and "retry-after" in resp.headers:
            # Serve's own plain-text answer past a replica's queue, where it is not turned
            # into JSON (serving/overload.py): behind Serve's Python proxy, no HAProxy.
            code = Overloaded.code
            message = Overloaded().message
        raise RemoteError(message, status_code=resp.status_code, remote_code=code)
    return resp


def pause(
    attempt: int, retry_after: str | None, settings: Settings, lost_request: bool = False
) -> float:
    """Seconds to wait before try ``attempt + 2``: the answer's ``Retry-After`` (in
    seconds) when it gives one, else full jitter over the doubled backoff; both capped.
    A request lost with its replica or connection (``lost_request``) goes again at once
    the first time."""
    if lost_request and attempt == 0 and retry_after is None:
        return 0.0
    if retry_after is not None:
        try:
            return min(max(float(retry_after), 0.0), settings.retry_max_s)
        except ValueError:
            pass  # an HTTP date: take the backoff instead
    return random.uniform(0, min(settings.retry_backoff_s * 2**attempt, settings.retry_max_s))


def decoded(resp: httpx.Response, check: bool = True) -> Any:
    """The JSON of an answer (InvalidJSON if it is none, unless ``check`` is off)."""
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        if not check:
            return {}
        raise InvalidJSON(
            f"platform answered non-JSON ({resp.status_code}): {resp.text[:300]}"
        ) from exc
