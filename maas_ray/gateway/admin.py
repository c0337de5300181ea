"""The management API under ``/v1/admin``: what the CLI and the SDK call.

Its routes (paths, scopes, bodies, answers) are declared in ``maas_ray/routes/management.py``;
here each one's handler is registered under the route's name. The guard has
already checked the caller's scopes. Every action that changes something is
written to the audit log, failed ones too. Errors are JSON ``{"error", "code"}``
with a 4xx status. Every lifecycle POST takes ``?timeout_s=N`` (1 to
MAAS_DEPLOY_TIMEOUT_S): how long the change may take to run before what ran
before is put back.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from maas_ray.control.deployer import ControlPlane
from maas_ray.errors import BadRequest, InvalidInput, InvalidJSON, MaasError, NotFound, first_error
from maas_ray.gateway.bodies import Identity, KeyBody, PromoteBody, RegisterBody, RollbackBody
from maas_ray.gateway.operations import Operations, Progress
from maas_ray.monitoring.api import Monitor
from maas_ray.registry import Registry
from maas_ray.routes import BY_NAME, Route
from maas_ray.security.audit import AuditLog
from maas_ray.security.keys import KeyStore
from maas_ray.security.scopes import Principal
from maas_ray.settings import Settings
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, QualityCheck, Shadow

logger = logging.getLogger(__name__)
Body = TypeVar("Body", bound=BaseModel)
# Audit action names that differ from the route's name.
_ACTIONS = {"create_key": "key.create", "revoke_key": "key.revoke"}


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
    operations: Operations | None = None  # the management replica's
    progress: Progress | None = None  # steps of a long action, for its operation
    parsed: Any = None  # the body, validated by the route's parser

    @cached_property
    def control(self) -> ControlPlane:
        return ControlPlane(self.settings, self.registry)


Handler = Callable[[Context], tuple[int, Any]]
Parser = Callable[[Call], Any]
HANDLERS: dict[str, Handler] = {}
PARSERS: dict[str, Parser] = {}  # route name -> its body, validated


def handles(
    name: str, body: type[BaseModel] | Parser | None = None, *, optional: bool = False
) -> Callable[[Handler], Handler]:
    """Register the handler of the management route ``name`` (from the table).

    ``body``: the pydantic model of its JSON body (``optional``: none is ``{}``), or
    a function that parses it; the handler finds it validated in ``Context.parsed``.
    """
    assert BY_NAME[name].app == "admin", name
    if isinstance(body, type):
        model = body
        PARSERS[name] = lambda call: _validated(model, _object(call.body or _empty(optional)))
    elif body is not None:
        PARSERS[name] = body

    def register(handler: Handler) -> Handler:
        HANDLERS[name] = handler
        return handler

    return register


def validate(call: Call) -> None:
    """Check a call's query and body before its action is queued (raises a 4xx, audited)."""
    try:
        _settings(call)
        parser = PARSERS.get(call.route.name)
        if parser is not None:
            parser(call)
    except MaasError as exc:
        action, target = _audited(call)
        audit = AuditLog(Settings().security_db_url)
        audit.record(call.actor, action, target, exc.status_code, f"{exc.code}: {exc.message}")
        raise


def _audited(call: Call) -> tuple[str, str]:
    """(action, target) of a call for the audit log."""
    target = call.params.get("name") or call.params.get("key_id") or "*"
    return _ACTIONS.get(call.route.name, call.route.name), target


def handle(
    registry: Registry,
    call: Call,
    operations: Operations | None = None,
    progress: Progress | None = None,
) -> tuple[int, Any]:
    """Run one management call; returns (status, JSON-able answer) or raises MaasError.

    A long action (``route.long``) runs here too: the management application
    calls this on its operations' worker, with ``progress`` recording the steps.
    """
    route = call.route
    settings = _settings(call)
    context = Context(registry, settings, call, operations, progress)
    if route.method == "GET":
        return HANDLERS[route.name](context)
    action, target = _audited(call)
    audit = AuditLog(settings.security_db_url)
    try:
        if route.name in PARSERS:
            context.parsed = PARSERS[route.name](call)
        status, answer = HANDLERS[route.name](context)
    except MaasError as exc:
        audit.record(call.actor, action, target, exc.status_code, f"{exc.code}: {exc.message}")
        raise
    audit.record(call.actor, action, target, status, _summary(action, answer))
    return status, answer


# -- reads ---------------------------------------------------------------------------
@handles("status")
def _status(c: Context) -> tuple[int, Any]:
    rows = c.control.status()
    monitor = Monitor.current  # the management replica's (None in a bare handler test)
    if monitor is not None:
        for row in rows:
            try:
                spec = c.registry.get_spec(row.model) or {}
                check = spec.get("quality")
                row.quality = monitor.quality(
                    row.model, row.version, None if check is None else QualityCheck(**check)
                )
            except Exception:  # the figures are extra: status answers without them
                logger.warning("no quality figures for %s", row.model, exc_info=True)
                row.quality = "unavailable"
    return 200, [row.model_dump() for row in rows]


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


@handles("operations")
def _operations(c: Context) -> tuple[int, Any]:
    return 200, [op.model_dump() for op in _store(c).recent()]


@handles("operation")
def _operation(c: Context) -> tuple[int, Any]:
    return 200, _store(c).get(c.call.params["op_id"]).model_dump()


def _store(c: Context) -> Operations:
    if c.operations is None:  # pragma: no cover - only the management application has them
        raise NotFound("operations are kept by the management application (maas-admin)")
    return c.operations


@handles("whoami")
def _whoami(c: Context) -> tuple[int, Any]:
    who = c.call.principal
    identity = Identity(
        name=who.name, key_id=who.key_id, scopes=sorted(who.scopes), mlflow_ui=c.settings.mlflow_uri
    )
    return 200, identity.model_dump()


@handles("list_keys")
def _list_keys(c: Context) -> tuple[int, Any]:
    return 200, [r.model_dump() for r in KeyStore(c.settings.security_db_url).records()]


@handles("audit")
def _audit(c: Context) -> tuple[int, Any]:
    query = c.call.query
    limit = _int(query.get("limit", "100"), "limit", 1, 1000)
    records = AuditLog(c.settings.security_db_url).query(
        query.get("model"), query.get("action"), limit
    )
    return 200, [r.model_dump() for r in records]


# -- changes -------------------------------------------------------------------------
@handles("apply", DeploymentFile)
def _apply(c: Context) -> tuple[int, Any]:
    return 200, c.control.apply_specs(c.parsed.models, c.progress)


@handles("create_key", KeyBody)
def _create_key(c: Context) -> tuple[int, Any]:
    ask: KeyBody = c.parsed
    record, key = KeyStore(c.settings.security_db_url).create(
        ask.scopes, ask.name, ask.expires_in_days
    )
    return 201, record.model_dump() | {"key": key}


@handles("revoke_key")
def _revoke_key(c: Context) -> tuple[int, Any]:
    return 200, KeyStore(c.settings.security_db_url).revoke(c.call.params["key_id"]).model_dump()


@handles("register", RegisterBody)
def _register(c: Context) -> tuple[int, Any]:
    reg: RegisterBody = c.parsed
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


def _deploy_spec(call: Call) -> DeploymentSpec:
    fields = _object(call.body or b"{}")
    if "model" in fields:
        raise InvalidInput("model: the model is named in the path, not the body")
    return _validated(DeploymentSpec, {**fields, "model": call.name})


@handles("deploy", _deploy_spec)
def _deploy(c: Context) -> tuple[int, Any]:
    return 200, c.control.deploy(c.parsed, c.progress).model_dump()


@handles("undeploy")
def _undeploy(c: Context) -> tuple[int, Any]:
    c.control.undeploy(c.call.name, c.progress)
    return 200, {"model": c.call.name, "undeployed": True}


@handles("promote", PromoteBody)
def _promote(c: Context) -> tuple[int, Any]:
    ask: PromoteBody = c.parsed
    row = c.control.promote(c.call.name, ask.version, ask.alias, c.progress)
    answer = {"model": c.call.name, "alias": ask.alias, "version": ask.version}
    return 200, answer | ({"status": row.model_dump()} if row else {})


@handles("rollback", RollbackBody, optional=True)
def _rollback(c: Context) -> tuple[int, Any]:
    ask: RollbackBody = c.parsed
    row = c.control.rollback(c.call.name, ask.alias, c.progress)
    version = c.registry.get_alias(c.call.name, ask.alias)
    answer = {"model": c.call.name, "alias": ask.alias, "version": version}
    return 200, answer | ({"status": row.model_dump()} if row else {})


@handles("canary", Canary)
def _canary(c: Context) -> tuple[int, Any]:
    return 200, c.control.start_challenger(c.call.name, c.parsed, c.progress).model_dump()


@handles("shadow", Shadow)
def _shadow(c: Context) -> tuple[int, Any]:
    return 200, c.control.start_challenger(c.call.name, c.parsed, c.progress).model_dump()


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
    if action == "retrain":
        return (
            f"{answer.get('kind')} job {answer.get('job_id')} from version "
            f"{answer.get('from_version')} on {answer.get('rows')} labelled predictions"
        )
    if action in ("train", "tune", "finetune", "stop_job"):
        return f"job {answer.get('id')} {answer.get('status')} run {answer.get('run_id')}"
    version = answer.get("version") or (answer.get("status") or {}).get("version")
    return f"version {version}, {answer.get('traffic') or answer.get('health') or ''}".strip(", ")


@lru_cache(maxsize=4)
def _environment_settings(environment: frozenset[tuple[str, str]]) -> Settings:
    return Settings()


def _settings(call: Call) -> Settings:
    """The settings of one call: its actor, and ``?timeout_s=N`` where the route takes it.

    Built from the settings of this process's environment, read once per environment
    (validating every field took ~10 ms per call, a sixth of the management replica's
    CPU under the test suite), not from the environment on every call.
    """
    base = _environment_settings(frozenset(os.environ.items()))
    settings = base.model_copy(update={"actor": call.actor})
    if "timeout_s" in call.route.params and "timeout_s" in call.query:
        # How long this change may take to run before what ran before is put back.
        limit = int(settings.deploy_timeout_s)
        timeout_s = _int(call.query["timeout_s"], "timeout_s", 1, limit)
        settings = settings.model_copy(update={"deploy_timeout_s": float(timeout_s)})
    return settings


def _empty(optional: bool) -> bytes:
    return b"{}" if optional else b""


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
        where, text = first_error(exc)
        raise InvalidInput(f"{where}: {text}") from exc


# The training and job routes' handlers live apart; importing them registers them.
from maas_ray.gateway import jobs_api  # noqa: E402, F401
