"""The management HTTP API under ``/v1/admin``: the CLI's lifecycle verbs over HTTP.

``GET  /v1/admin/status``                       one row per deployed model
``GET  /v1/admin/models/{name}/history``        alias moves and deploy actions
``POST /v1/admin/models/{name}/promote``        ``{"version": "2", "alias": "production"}``
``POST /v1/admin/models/{name}/rollback``       ``{"alias": "production"}`` (body optional)
``POST /v1/admin/models/{name}/canary``         ``{"version", "percent", "sticky_header"}``
``POST /v1/admin/models/{name}/shadow``         ``{"version", "percent"}``
``POST /v1/admin/apply``                        a ``kind: MaasDeployments`` document

It runs inside the gateway replica and drives the same ControlPlane as the CLI.
Errors are JSON ``{"error", "code"}`` with a 4xx status.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas_ray.control.deployer import PRODUCTION, ControlPlane
from maas_ray.control.spec import DeploymentFile
from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, NotFound
from maas_ray.registry import Registry
from maas_ray.serving.traffic import Canary, Shadow
from maas_ray.settings import Settings

PREFIX = ("v1", "admin")
ACTOR_HEADER = "x-maas-actor"


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=20)
    alias: str = PRODUCTION


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = PRODUCTION


def handle(
    registry: Registry, method: str, parts: list[str], body: bytes, actor: str | None
) -> tuple[int, Any]:
    """Run one management call; returns (status, JSON-able answer) or raises MaasError."""
    control = ControlPlane(Settings(actor=f"api:{actor}" if actor else "api"), registry)
    rest = parts[len(PREFIX) :]
    if rest == ["status"] and method == "GET":
        return 200, [row.model_dump() for row in control.status()]
    if rest == ["apply"] and method == "POST":
        document = _validated(DeploymentFile, body)
        return 200, control.apply_specs(document.models)
    if len(rest) == 3 and rest[0] == "models":
        name, verb = rest[1], rest[2]
        if verb == "history" and method == "GET":
            return 200, [e.model_dump() for e in registry.history(name)]
        if method == "POST" and verb == "promote":
            promote = _validated(PromoteBody, body)
            row = control.promote(name, promote.version, promote.alias)
            return 200, {"model": name, "alias": promote.alias, "version": promote.version} | (
                {"status": row.model_dump()} if row else {}
            )
        if method == "POST" and verb == "rollback":
            back = _validated(RollbackBody, body or b"{}")
            row = control.rollback(name, back.alias)
            return 200, {"model": name, "alias": back.alias} | (
                {"status": row.model_dump()} if row else {}
            )
        if method == "POST" and verb in ("canary", "shadow"):
            side = _validated(Canary if verb == "canary" else Shadow, body)
            return 200, control.start_challenger(name, side).model_dump()
    raise NotFound(f"no management route {method} /{'/'.join(parts)}")


def _validated(model: Any, body: bytes) -> Any:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"got a JSON {type(data).__name__}: send a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        text = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {text}") from exc
