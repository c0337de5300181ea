"""The management API under ``/v1/admin``: what the CLI and the SDK call.

Its routes (paths, scopes, bodies, answers) are declared in ``maas_ray/routes.py``;
here each one's handler is registered under the route's name. The guard has
already checked the caller's scopes. Every action that changes something is
written to the audit log, failed ones too. Errors are JSON ``{"error", "code"}``
with a 4xx status. Every lifecycle POST takes ``?timeout_s=N`` (1 to
MAAS_DEPLOY_TIMEOUT_S): how long the change may take to run before what ran
before is put back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from maas_ray.control.deployer import ControlPlane
from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError
from maas_ray.registry import Registry
from maas_ray.routes import BY_NAME, Route
from maas_ray.security.audit import AuditLog
from maas_ray.security.keys import KeyStore
from maas_ray.security.scopes import Principal
from maas_ray.settings import Settings
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, Shadow
from maas_ray.wire import PRODUCTION

Body = TypeVar("Body", bound=BaseModel)
# Audit action names that differ from the route's name.
_ACTIONS = {"create_key": "key.create", "revoke_key": "key.revoke"}


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


@dataclass
class Call:
    """One management request, as the gateway hands it over."""

    route: Route
    principal: Principal
    params: dict[str, str] = field(default_factory=dict)  # the path's parameters
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    user: str | None = None  # the x-maas-actor header, if sent

    @property
    def actor(self) -> str:
        """The verified credential, with the self-reported user beside it."""
        if not self.user:
            return self.principal.name
        return f"{self.principal.name} ({self.user[:64]})"  # a header: bounded, not trusted

    @property
    def name(self) -> str:
        """The model named in the path."""
        return self.params["name"]


@dataclass
class Context:
    """What a handler works with."""

    registry: Registry
    settings: Settings
    call: Call

    @cached_property
    def control(self) -> ControlPlane:
        return ControlPlane(self.settings, self.registry)

    def body(self, model: type[Body], *, optional: bool = False) -> Body:
        """The JSON body validated by ``model`` (``optional``: no body is ``{}``)."""
        raw = self.call.body or (b"{}" if optional else b"")
        return _validated(model, _object(raw))


Handler = Callable[[Context], tuple[int, Any]]
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[Handler], Handler]:
    """Register the handler of the management route ``name`` (from the table)."""
    assert BY_NAME[name].app == "admin", name

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


def handle(registry: Registry, call: Call) -> tuple[int, Any]:
    """Run one management call; returns (status, JSON-able answer) or raises MaasError."""
    settings = Settings(actor=call.actor)
    route = call.route
    if "timeout_s" in route.params and "timeout_s" in call.query:
        # How long this change may take to run before what ran before is put back.
        limit = int(settings.deploy_timeout_s)
        timeout_s = _int(call.query["timeout_s"], "timeout_s", 1, limit)
        settings = settings.model_copy(update={"deploy_timeout_s": float(timeout_s)})
    context = Context(registry, settings, call)
    if route.method == "GET":
        return HANDLERS[route.name](context)
    action = _ACTIONS.get(route.name, route.name)
    target = call.params.get("name") or call.params.get("key_id") or "*"
    audit = AuditLog(settings.security_dir)
    try:
        status, answer = HANDLERS[route.name](context)
    except MaasError as exc:
        audit.record(call.actor, action, target, exc.status_code, f"{exc.code}: {exc.message}")
        raise
    audit.record(call.actor, action, target, status, _summary(action, answer))
    return status, answer


# -- reads ---------------------------------------------------------------------------
@handles("status")
def _status(c: Context) -> tuple[int, Any]:
    return 200, [row.model_dump() for row in c.control.status()]


@handles("cluster")
def _cluster(c: Context) -> tuple[int, Any]:
    return 200, [node.model_dump() for node in c.control.cluster()]


@handles("list_models")
def _list_models(c: Context) -> tuple[int, Any]:
    return 200, [m.model_dump() for m in c.registry.list_models()]


@handles("show_model")
def _show_model(c: Context) -> tuple[int, Any]:
    return 200, c.registry.get_model(c.call.name).model_dump()


@handles("history")
def _history(c: Context) -> tuple[int, Any]:
    return 200, [e.model_dump() for e in c.registry.history(c.call.name)]


@handles("list_keys")
def _list_keys(c: Context) -> tuple[int, Any]:
    return 200, [r.model_dump() for r in KeyStore(c.settings.security_dir).records()]


@handles("audit")
def _audit(c: Context) -> tuple[int, Any]:
    query = c.call.query
    limit = _int(query.get("limit", "100"), "limit", 1, 1000)
    records = AuditLog(c.settings.security_dir).query(
        query.get("model"), query.get("action"), limit
    )
    return 200, [r.model_dump() for r in records]


# -- changes -------------------------------------------------------------------------
@handles("apply")
def _apply(c: Context) -> tuple[int, Any]:
    return 200, c.control.apply_specs(c.body(DeploymentFile).models)


@handles("create_key")
def _create_key(c: Context) -> tuple[int, Any]:
    ask = c.body(KeyBody)
    record, key = KeyStore(c.settings.security_dir).create(
        ask.scopes, ask.name, ask.expires_in_days
    )
    return 201, record.model_dump() | {"key": key}


@handles("revoke_key")
def _revoke_key(c: Context) -> tuple[int, Any]:
    return 200, KeyStore(c.settings.security_dir).revoke(c.call.params["key_id"]).model_dump()


@handles("register")
def _register(c: Context) -> tuple[int, Any]:
    reg = c.body(RegisterBody)
    if not reg.model_uri.startswith(("runs:/", "models:/")):
        # Never a path or file:// URI: that would read the gateway's own disk.
        raise InvalidInput(
            f"model_uri: got '{reg.model_uri[:200]}': send a runs:/ or models:/ URI "
            "(the SDK and CLI upload a local folder first)"
        )
    version = c.registry.register_uri(
        c.call.name, reg.model_uri, description=reg.description, tags=reg.tags
    )
    return 201, version.model_dump()


@handles("deploy")
def _deploy(c: Context) -> tuple[int, Any]:
    fields = _object(c.call.body or b"{}")
    if "model" in fields:
        raise InvalidInput("model: the model is named in the path, not the body")
    spec = _validated(DeploymentSpec, {**fields, "model": c.call.name})
    return 200, c.control.deploy(spec).model_dump()


@handles("undeploy")
def _undeploy(c: Context) -> tuple[int, Any]:
    c.control.undeploy(c.call.name)
    return 200, {"model": c.call.name, "undeployed": True}


@handles("promote")
def _promote(c: Context) -> tuple[int, Any]:
    ask = c.body(PromoteBody)
    row = c.control.promote(c.call.name, ask.version, ask.alias)
    answer = {"model": c.call.name, "alias": ask.alias, "version": ask.version}
    return 200, answer | ({"status": row.model_dump()} if row else {})


@handles("rollback")
def _rollback(c: Context) -> tuple[int, Any]:
    ask = c.body(RollbackBody, optional=True)
    row = c.control.rollback(c.call.name, ask.alias)
    version = c.registry.get_alias(c.call.name, ask.alias)
    answer = {"model": c.call.name, "alias": ask.alias, "version": version}
    return 200, answer | ({"status": row.model_dump()} if row else {})


@handles("canary")
def _canary(c: Context) -> tuple[int, Any]:
    return 200, c.control.start_challenger(c.call.name, c.body(Canary)).model_dump()


@handles("shadow")
def _shadow(c: Context) -> tuple[int, Any]:
    return 200, c.control.start_challenger(c.call.name, c.body(Shadow)).model_dump()


# -- helpers -------------------------------------------------------------------------
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


def _validated(model: type[Body], data: dict[str, Any]) -> Body:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "body"
        text = str(first["msg"]).removeprefix("Value error, ")
        raise InvalidInput(f"{where}: {text}") from exc
