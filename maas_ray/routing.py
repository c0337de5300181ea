"""How a route is declared and matched; the table itself is the package ``routes/``.

Matching is Starlette's (``starlette.routing.Route``), so a path parameter never
spans a ``/``, and a path that exists for another method is told apart (405).
Starlette is imported on first match only: the CLI reads routes without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

if TYPE_CHECKING:
    from starlette.routing import Route as StarletteRoute

App = Literal["model", "gateway", "admin"]


@dataclass(frozen=True)
class Route:
    """One route.

    ``scopes``: None for a public route, () for any valid credential, else the
    scopes of which any one opens it (``admin`` always does); ``{name}`` in a scope
    is the path's model name. ``body`` and ``answer`` name schemas of the OpenAPI
    document (``[X]``: a list of X); ``errors`` the 4xx/5xx statuses the handler
    itself may answer (the guard's 401/403 and a body's 400/413/415/422 are added).
    ``params`` name further parameters (query, headers) of the document. A
    ``long`` route answers 202 with an operation at once (``operation`` tells how
    it goes); ``answer`` is then the operation's result.
    """

    name: str
    method: str
    path: str
    scopes: tuple[str, ...] | None
    app: App
    tag: str
    summary: str
    body: str | None = None
    body_required: bool = True
    answer: str = "Error"
    status: int = 200
    errors: tuple[int, ...] = ()
    params: tuple[str, ...] = ()
    long: bool = False  # answered 202 with an operation; ``answer`` is its result

    def required(self, params: dict[str, str]) -> tuple[str, ...] | None:
        """The scopes, ``{name}`` filled in from the matched path."""
        if not self.scopes:
            return self.scopes
        return tuple(s.format(**params) if "{" in s else s for s in self.scopes)

    def url(self, **params: Any) -> str:
        """The path with its parameters filled in (each quoted as one segment)."""
        return self.path.format(**{k: quote(str(v), safe="") for k, v in params.items()})


@dataclass(frozen=True)
class Match:
    """A path matched against the table.

    ``route`` is None for a path no route has; ``allowed`` is False when the
    path exists for other methods only (``methods``): a 405.
    """

    route: Route | None
    params: dict[str, str] = field(default_factory=dict)
    allowed: bool = True
    methods: tuple[str, ...] = ()

    @property
    def required(self) -> tuple[str, ...] | None:
        """The scopes that open this path (an unknown path: any valid credential)."""
        if self.route is None:
            return ()
        return self.route.required(self.params)


NO_ROUTE = Match(None)


def match_in(table: Sequence[Route], method: str, path: str) -> Match:
    """The route of ``method path`` in ``table``; one with another method gives
    ``allowed=False``."""
    compiled, full, partial_match = _compiled(tuple(table))
    scope = {"type": "http", "method": method.upper(), "path": path, "root_path": ""}
    partial: list[Route] = []
    params: dict[str, str] = {}
    for route, candidate in compiled:
        found, child = candidate.matches(scope)
        if found is full:
            return Match(route, child["path_params"])
        if found is partial_match:
            if not partial:
                params = child["path_params"]
            partial.append(route)
    if not partial:
        return NO_ROUTE
    return Match(partial[0], params, allowed=False, methods=tuple(r.method for r in partial))


@cache
def _compiled(table: tuple[Route, ...]) -> tuple[list[tuple[Route, StarletteRoute]], Any, Any]:
    """The table as Starlette routes (built once, on first use: the CLI never needs it)."""
    from starlette.routing import Match as Matched
    from starlette.routing import Route as StarletteRoute

    def unreachable(_: Any) -> None:  # matching only: dispatch goes by the route's name
        raise AssertionError("dispatch by route name")

    compiled = [(r, StarletteRoute(r.path, unreachable, methods=[r.method])) for r in table]
    return compiled, Matched.FULL, Matched.PARTIAL
