"""Request guards shared by every HTTP front end: bounded body reads."""

from __future__ import annotations

from starlette.requests import Request

from maas_ray.errors import BadRequest, PayloadTooLarge


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
