"""A replica's answer past its queue (``max_queued_requests``), in the platform's JSON.

Ray Serve 2.60 answers a direct-ingress request that finds the replica's queue full
before any of the platform's code runs: ``503``, ``Retry-After``, and the plain text
``Request dropped due to backpressure``, with no setting for the body. The one
function Ray's replica module builds that answer with
(``convert_object_to_asgi_messages``) is wrapped as the module is imported
(``serving/loopback.py`` installs the hook in every worker): that text at 503 becomes
the platform's error, ``{"error": ..., "code": "overloaded"}`` as JSON, its headers
kept; every other answer passes through as Ray built it. Should a Ray upgrade change
the text or the function, the answer stays Ray's (a warning says so) and
``tests/unit/test_overload.py`` fails.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import Any

from maas_ray.errors import Overloaded

logger = logging.getLogger(__name__)

BACKPRESSURE_TEXT = "Request dropped due to backpressure"  # ray/serve/_private/replica.py
CONVERT = "convert_object_to_asgi_messages"


def install(module: ModuleType) -> None:
    """Wrap ``module``'s (Ray's replica module's) answer builder; idempotent."""
    real = getattr(module, CONVERT, None)
    if real is None:
        logger.warning("Ray's %s is gone: an overload's 503 keeps Serve's text body", CONVERT)
        return
    if getattr(real, "_maas_overload", False):
        return

    def convert(obj: Any = None, status_code: int = 200, extra_headers: Any = None) -> Any:
        if status_code == Overloaded.status_code and obj == BACKPRESSURE_TEXT:
            obj = Overloaded().to_dict()  # a dict: Ray writes it as application/json
        return real(obj, status_code=status_code, extra_headers=extra_headers)

    convert._maas_overload = True  # type: ignore[attr-defined]
    convert.__wrapped__ = real  # type: ignore[attr-defined] # inspect.unwrap finds Ray's
    setattr(module, CONVERT, convert)
