"""What every HTTP front end shares: bounded body reads, and errors as JSON answers."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import (
    BadRequest,
    Forbidden,
    MaasError,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthorized,
)
from maas_ray.security.masking import mask_text
from maas_ray.wire import JSON

UNEXPECTED = MaasError("internal error: the replica's log has the details")


def encode_error(error: MaasError) -> bytes:
    """The JSON body of any maas_ray error, personal data in its message masked."""
    data = error.to_dict()
    data["error"] = mask_text(data["error"])
    return orjson.dumps(data)


def error_response(
    error: MaasError, headers: dict[str, str] | None = None, body: bytes | None = None
) -> Response:
    """The one place an error becomes an HTTP response.

    401 and 403 carry the ``WWW-Authenticate`` challenge of RFC 6750, a 405 its
    ``Allow`` header. ``body``, when given, is the error's JSON already encoded
    (and masked).
    """
    extra: dict[str, str] = {}
    if isinstance(error, Unauthorized | Forbidden):
        challenge = Unauthorized.challenge
        if isinstance(error, Forbidden):
            challenge += ', error="insufficient_scope"'
        extra["www-authenticate"] = challenge
    if isinstance(error, MethodNotAllowed):
        extra["allow"] = ", ".join(error.allowed)
    return Response(
        body if body is not None else encode_error(error),
        status_code=error.status_code,
        media_type=JSON,
        headers={**(headers or {}), **extra} if extra else headers,
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it passes ``limit`` bytes.

    A declared Content-Length over the limit is refused before a byte is read; a
    chunked body is read only up to the limit.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise BadRequest(f"got '{declared[:40]}' for Content-Length: not a number") from None
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit))
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(_too_large(size, limit, at_least=True))
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int, at_least: bool = False) -> str:
    got = f"{'more than ' if at_least else ''}{size:,} bytes"
    return f"request body of {got} is over the limit of {limit:,} bytes (MAAS_MAX_BODY_MB)"
