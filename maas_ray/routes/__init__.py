"""Every HTTP route of the platform, declared once, as data.

Each route names its method, path template, the scopes that open it, the Serve
application that answers it, and the schemas and errors of the OpenAPI
document. Everything else derives from this table: the guard's scope check
(``security/auth.py``), each application's dispatch (a handler is registered
under the route's name), the OpenAPI document, and the paths the SDK and the CLI
call (``url``). No other module spells a URL; how a route is declared and matched
is ``routing.py``.

The data plane's routes are in ``data_plane.py``, the management API's in
``management.py``; this module joins them (the data plane first: the guard tries
routes in order, and predict is the hot path) and answers questions about them.

The table is on the ground floor: every replica's guard reads it on every
request, and the CLI imports it without Ray.
"""

from __future__ import annotations

from typing import Any

from maas_ray.routes.data_plane import DATA_PLANE, MODELS_PREFIX, OIP_PREFIX
from maas_ray.routes.management import ADMIN_PREFIX, MANAGEMENT, READERS
from maas_ray.routing import Match, Route, match_in

__all__ = [
    "ADMIN_PREFIX",
    "BY_NAME",
    "MODELS_PREFIX",
    "Match",
    "OIP_PREFIX",
    "READERS",
    "ROUTES",
    "Route",
    "match",
    "model_prefix",
    "url",
]

ROUTES: tuple[Route, ...] = (*DATA_PLANE, *MANAGEMENT)
BY_NAME: dict[str, Route] = {r.name: r for r in ROUTES}


def url(route: str, /, **params: Any) -> str:
    """The path of ``route`` with ``params`` filled in: ``url("predict", name="iris")``."""
    return BY_NAME[route].url(**params)


def model_prefix(model: str) -> str:
    """The route prefix of a model's own Serve application."""
    return BY_NAME["model_metadata"].url(name=model)


def match(method: str, path: str) -> Match:
    """The route of ``method path``; one with another method gives ``allowed=False``."""
    return match_in(ROUTES, method, path)
