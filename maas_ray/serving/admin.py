"""The management HTTP API under ``/v1/admin``: what the CLI and the SDK call.

``GET    /v1/admin/status``                       one row per deployed model
``GET    /v1/admin/cluster``                      per node: CPU, GPU, memory used of total
``GET    /v1/admin/models``                       registered models
``GET    /v1/admin/models/{name}``                one model with its versions
``GET    /v1/admin/models/{name}/history``        alias moves and deploy actions
``POST   /v1/admin/models/{name}/versions``       ``{"model_uri", "description", "tags"}``
``POST   /v1/admin/models/{name}/deploy``         DeploymentSpec fields but ``model``
``POST   /v1/admin/models/{name}/undeploy``
``POST   /v1/admin/models/{name}/promote``        ``{"version": "2", "alias": "production"}``
``POST   /v1/admin/models/{name}/rollback``       ``{"alias": "production"}`` (body optional)
``POST   /v1/admin/models/{name}/canary``         ``{"version", "percent", "sticky_header"}``
``POST   /v1/admin/models/{name}/shadow``         ``{"version", "percent"}``
``POST   /v1/admin/apply``                        a ``kind: MaasDeployments`` document
``GET    /v1/admin/keys``, ``POST /v1/admin/keys`` ``{"scopes", "name", "expires_in_days"}``
``DELETE /v1/admin/keys/{id}``                    revoke
``GET    /v1/admin/audit?model=&action=&limit=``

It runs inside the gateway replica and drives the same ControlPlane as before;
the gateway has already checked the caller's scopes (security/scopes.py). Every
action that changes something is written to the audit log, failed ones too.
Errors are JSON ``{"error", "code"}`` with a 4xx status. Every POST takes
``?timeout_s=N`` (1 to MAAS_DEPLOY_TIMEOUT_S): how long the change may take to run
before what ran before is put back.
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas_ray.control.deployer import PRODUCTION, ControlPlane
from maas_ray.control.spec import DeploymentFile, DeploymentSpec
from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError, NotFound
from maas_ray.registry import Registry
from maas_ray.security.audit import AuditLog
from maas_ray.security.keys import KeyStore
from maas_ray.security.scopes import Principal
from maas_ray.serving.traffic import Canary, Shadow
from maas_ray.settings import Settings

PREFIX = ("v1", "admin")
ACTOR_HEADER = "x-maas-actor"  # who typed the command (self-reported; the key is verified)
MODEL_VERBS = ("deploy", "undeploy", "promote", "rollback", "canary", "shadow", "versions")


class PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1, max_length=20)
    alias: str = PRODUCTION


class RollbackBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = PRODUCTION


class RegisterBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_uri: str = Field(min_length=1, max_length=2000, description="runs:/ or models:/ URI.")
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] | None = None


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scopes: list[str] = Field(min_length=1, max_length=100)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    expires_in_days: float | None = Field(default=None, gt=0, le=36500)


class Call(BaseModel):
    """One management request, as the gateway hands it over."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    method: str
    parts: list[str]
    body: bytes = b""
    query: dict[str, str] = Field(default_factory=dict)
    principal: Principal
    user: str | None = None  # the x-maas-actor header, if sent

    @property
    def actor(self) -> str:
        """The verified credential, with the self-reported user beside it."""
        if not self.user:
            return self.principal.name
        return f"{self.principal.name} ({self.user[:64]})"  # a header: bounded, not trusted


def handle(registry: Registry, call: Call) -> tuple[int, Any]:
    """Run one management call; returns (status, JSON-able answer) or raises MaasError."""
    settings = Settings(actor=call.actor)
    rest = call.parts[len(PREFIX) :]
    action, target = _audited(call.method, rest)
    if action is None:
        return _read(registry, settings, call, rest)
    audit = AuditLog(settings.security_dir)
    try:
        status, answer = _change(registry, settings, call, rest)
    except MaasError as exc:
        audit.record(call.actor, action, target, exc.status_code, f"{exc.code}: {exc.message}")
        raise
    audit.record(call.actor, action, target, status, _summary(action, answer))
    return status, answer


def _audited(method: str, rest: list[str]) -> tuple[str | None, str]:
    """(action, target) of a call that changes something; (None, "") for reads."""
    if method == "POST" and rest == ["apply"]:
        return "apply", "*"
    if method == "POST" and rest == ["keys"]:
        return "key.create", "*"
    if method == "DELETE" and len(rest) == 2 and rest[0] == "keys":
        return "key.revoke", rest[1]
    if method == "POST" and len(rest) == 3 and rest[0] == "models" and rest[2] in MODEL_VERBS:
        return ("register" if rest[2] == "versions" else rest[2]), rest[1]
    return None, ""


def _read(registry: Registry, settings: Settings, call: Call, rest: list[str]) -> tuple[int, Any]:
    if call.method != "GET":
        raise NotFound(f"no management route {call.method} /{'/'.join(call.parts)}")
    if rest == ["status"]:
        return 200, [row.model_dump() for row in ControlPlane(settings, registry).status()]
    if rest == ["cluster"]:
        return 200, [node.model_dump() for node in ControlPlane(settings, registry).cluster()]
    if rest == ["models"]:
        return 200, [m.model_dump() for m in registry.list_models()]
    if len(rest) == 2 and rest[0] == "models":
        return 200, registry.get_model(rest[1]).model_dump()
    if len(rest) == 3 and rest[0] == "models" and rest[2] == "history":
        return 200, [e.model_dump() for e in registry.history(rest[1])]
    if rest == ["keys"]:
        return 200, [r.model_dump() for r in KeyStore(settings.security_dir).records()]
    if rest == ["audit"]:
        limit = _int(call.query.get("limit", "100"), "limit", 1, 1000)
        log = AuditLog(settings.security_dir)
        records = log.query(call.query.get("model"), call.query.get("action"), limit)
        return 200, [r.model_dump() for r in records]
    raise NotFound(f"no management route GET /{'/'.join(call.parts)}")


def _change(registry: Registry, settings: Settings, call: Call, rest: list[str]) -> tuple[int, Any]:
    if "timeout_s" in call.query:
        # How long this change may take to run before what ran before is put back.
        limit = int(settings.deploy_timeout_s)
        timeout_s = _int(call.query["timeout_s"], "timeout_s", 1, limit)
        settings = settings.model_copy(update={"deploy_timeout_s": float(timeout_s)})
    control = ControlPlane(settings, registry)
    if rest == ["apply"]:
        document = _validated(DeploymentFile, call.body)
        return 200, control.apply_specs(document.models)
    if rest == ["keys"]:
        ask = _validated(KeyBody, call.body)
        record, key = KeyStore(settings.security_dir).create(
            ask.scopes, ask.name, ask.expires_in_days
        )
        return 201, record.model_dump() | {"key": key}
    if rest[0] == "keys":
        return 200, KeyStore(settings.security_dir).revoke(rest[1]).model_dump()
    name, verb = rest[1], rest[2]
    if verb == "versions":
        reg = _validated(RegisterBody, call.body)
        if not reg.model_uri.startswith(("runs:/", "models:/")):
            # Never a path or file:// URI: that would read the gateway's own disk.
            raise InvalidInput(
                f"model_uri: got '{reg.model_uri[:200]}': send a runs:/ or models:/ URI "
                "(the SDK and CLI upload a local folder first)"
            )
        version = registry.register_uri(
            name, reg.model_uri, description=reg.description, tags=reg.tags
        )
        return 201, version.model_dump()
    if verb == "deploy":
        fields = _object(call.body or b"{}")
        if "model" in fields:
            raise InvalidInput("model: the model is named in the path, not the body")
        spec = _validated(DeploymentSpec, orjson.dumps({**fields, "model": name}))
        return 200, control.deploy(spec).model_dump()
    if verb == "undeploy":
        control.undeploy(name)
        return 200, {"model": name, "undeployed": True}
    if verb == "promote":
        promote = _validated(PromoteBody, call.body)
        row = control.promote(name, promote.version, promote.alias)
        return 200, {"model": name, "alias": promote.alias, "version": promote.version} | (
            {"status": row.model_dump()} if row else {}
        )
    if verb == "rollback":
        back = _validated(RollbackBody, call.body or b"{}")
        row = control.rollback(name, back.alias)
        alias = {
            "model": name,
            "alias": back.alias,
            "version": registry.get_alias(name, back.alias),
        }
        return 200, alias | ({"status": row.model_dump()} if row else {})
    side = _validated(Canary if verb == "canary" else Shadow, call.body)
    return 200, control.start_challenger(name, side).model_dump()


def _summary(action: str, answer: Any) -> str:
    """A short detail line for the audit record (never a key's secret)."""
    if not isinstance(answer, dict):
        return ""
    if action.startswith("key."):
        return f"key {answer.get('id')} '{answer.get('name')}' scopes {answer.get('scopes')}"
    if action == "register":
        return f"version {answer.get('version')} sha256 {str(answer.get('sha256'))[:16]}"
    if action == "apply":
        return ", ".join(f"{m}: {what}" for m, what in answer.items())
    version = answer.get("version") or (answer.get("status") or {}).get("version")
    return f"version {version}, {answer.get('traffic') or answer.get('health') or ''}".strip(", ")


def _int(raw: str, field: str, low: int, high: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{field}: got '{raw[:40]}', not a whole number") from None
    if not low <= value <= high:
        raise InvalidInput(f"{field}: got {value}, use {low}-{high}")
    return value


def _object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"malformed JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise BadRequest(f"got a JSON {type(data).__name__}: send a JSON object")
    return data


def _validated(model: Any, body: bytes) -> Any:
    data = _object(body)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        text = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {text}") from exc
