"""How a model's replica or the gateway passes the monitoring routes on.

The feedback and monitoring routes sit under a model's prefix, so Serve sends
them to whichever application serves that prefix. After the guard has checked
the caller's scope there, this hands the call to the management application
(``Monitor`` in ``api.py``), whose threads do the reading and writing.
"""

from __future__ import annotations

import logging
from typing import Any

from ray import serve
from starlette.requests import Request
from starlette.responses import Response

from maas_ray.errors import PlatformUnavailable, UnsupportedMediaType
from maas_ray.http_io import read_body
from maas_ray.spec import ADMIN_APP
from maas_ray.wire import JSON

logger = logging.getLogger(__name__)
ROUTES = ("feedback", "monitoring")


class AdminLink:
    """A handle to the management application, looked up on first use."""

    def __init__(self, max_body: int) -> None:
        self.max_body = max_body
        self._handle: Any = None

    async def answer(self, route: str, model: str, request: Request) -> Response:
        """The management application's answer to ``route`` for ``model``."""
        body = b""
        if route == "feedback":
            body = await read_body(request, self.max_body)
            mime = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
            if mime not in (JSON, ""):
                raise UnsupportedMediaType(f"got content type '{mime}': send {JSON}")
        try:
            if self._handle is None:
                self._handle = serve.get_app_handle(ADMIN_APP)
            status, out = await self._handle.monitor.remote(
                route, model, body, dict(request.query_params)
            )
        except Exception as exc:
            self._handle = None
            logger.warning("the management application did not answer %s", route, exc_info=True)
            raise PlatformUnavailable(
                "the management API (Serve application maas-admin) is not answering; "
                "`maas up` starts it"
            ) from exc
        return Response(out, status_code=status, media_type=JSON)
