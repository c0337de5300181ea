"""The OpenAPI 3.1 document of maas_ray's HTTP surface (served at ``GET /openapi.json``).

Request and answer schemas come from the pydantic models that validate them
(``model_json_schema()``: JSON Schema 2020-12, which OpenAPI 3.1 takes as is);
their ``$defs`` are hoisted into ``components/schemas`` and every ``$ref`` points
there, and what the handlers check beyond the models (URI schemes, known scopes)
is added to them. What has no pydantic model (MLflow's scoring formats, small
answers) is written out here.

Every operation needs ``Authorization: Bearer <credential>`` (an API key
``maas_...`` or a JWT) except the health routes; its security requirement names
the scopes that open it (OpenAPI 3.1 role names; several requirements: any one).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from maas_ray.control.status import ModelStatus, NodeResources, Operation
from maas_ray.gateway.admin import KeyBody, PromoteBody, RegisterBody, RollbackBody
from maas_ray.gateway.docs import ASSETS
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.routes import BY_NAME, ROUTES, Route
from maas_ray.security.audit import AuditRecord
from maas_ray.security.keys import KeyRecord
from maas_ray.security.scopes import PER_MODEL, PLAIN
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, Shadow
from maas_ray.wire import ACTOR_HEADER, CSV, JSON, VERSION_HEADER

OPENAPI_VERSION = "3.1.0"
BEARER = "bearer"
_REF = "#/components/schemas/{model}"
_TEXT = {"type": "string"}
_MODELS: tuple[type[BaseModel], ...] = (
    ModelStatus,
    NodeResources,
    ModelInfo,
    VersionInfo,
    HistoryEvent,
    Canary,
    Shadow,
    DeploymentFile,
    PromoteBody,
    RollbackBody,
    RegisterBody,
    KeyBody,
    AuditRecord,
    Operation,
)
_ADMIN = "admin"

# status -> (component name, description); each answers the Error schema.
_ERRORS: dict[str, tuple[str, str]] = {
    "400": (
        "BadRequest",
        "Malformed request. Codes: `bad_request` (not the shape asked for), `invalid_json` "
        "(the body is not JSON), `json_too_deep` (JSON nested past the platform's limit).",
    ),
    "401": (
        "Unauthorized",
        "No credential, or not a valid one (unknown, revoked or expired key; bad JWT). "
        "Code: `unauthorized`.",
    ),
    "403": (
        "Forbidden",
        "A valid credential whose scopes do not cover the route. Code: `forbidden`.",
    ),
    "404": (
        "NotFound",
        "Codes: `not_found` (no such route or record), `model_not_found` (not in the "
        "registry), `not_deployed` (registered, but that version is not served), "
        "`key_not_found`.",
    ),
    "405": ("MethodNotAllowed", "The route exists for another HTTP method."),
    "409": (
        "Conflict",
        "The request conflicts with the current state (`conflict`), or the cluster has no "
        "room for the replicas it needs (`insufficient_resources`, with `asked` and `free`; "
        "nothing was changed).",
    ),
    "413": (
        "PayloadTooLarge",
        "The body is over the platform's limit (MAAS_MAX_BODY_MB). Code: `payload_too_large`.",
    ),
    "415": (
        "UnsupportedMediaType",
        "A body that is not JSON (predict also takes CSV). Code: `unsupported_media_type`.",
    ),
    "422": (
        "UnprocessableEntity",
        "Well-formed, but not valid here. Codes: `invalid_input` (fails the schema or the "
        "model's signature), `prediction_failed` (the model rejected the input).",
    ),
    "500": (
        "DeploymentFailed",
        "The new replicas did not start; the change was undone. Code: `deployment_failed`.",
    ),
}
_BODY_ERRORS = ("400", "413", "415", "422")


def openapi_document(model_names: Sequence[str] | None = None) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the platform's HTTP API.

    Args:
        model_names: When given, the ``{name}`` of the model routes
            (``/v1/models/{name}/...``) is an enum of these names (a fuzzer then
            hits deployed models); the admin routes keep ``{name}`` a free string.

    Returns:
        A new JSON-able dict on every call.
    """
    schemas = _schemas()
    model_name: dict[str, Any] = {"type": "string", "minLength": 1}
    if model_names is not None:
        model_name = {"type": "string", "enum": list(dict.fromkeys(model_names))}
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "maas_ray",
            "version": "1",
            "description": "Model-as-a-Service on an MLflow registry and Ray Serve. Errors are "
            'JSON `{"error": message, "code": code}`.',
        },
        "servers": [{"url": "/"}],
        "security": [{BEARER: []}],
        "tags": [
            {"name": "health", "description": "Liveness and readiness; no credential."},
            {"name": "models", "description": "Predict and read model metadata."},
            {"name": "admin", "description": "Management: status, lifecycle, registry."},
            {"name": "security", "description": "API keys and the audit log."},
            {"name": "docs", "description": "This document; no credential."},
        ],
        "paths": _paths(model_name),
        "components": {
            "schemas": schemas,
            "responses": _error_responses(),
            "parameters": _parameters(),
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key (`maas_<id>_<secret>`, from `maas keys create`) "
                    "or a JWT signed with the platform's configured secret or JWKS.",
                }
            },
        },
    }


# -- schemas -------------------------------------------------------------------------
def _schemas() -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": _object(
            {"error": {"type": "string"}, "code": {"type": "string"}},
            description="Every 4xx/5xx answer.",
        ),
        "Health": _object({"status": {"const": "ok"}}),
    }
    for model in _MODELS:
        _hoist(schemas, model)
    # As answered: the key's hash is excluded from dumps, so from this schema too.
    _hoist(schemas, KeyRecord, mode="serialization")
    schemas["DeployBody"] = _deploy_body(schemas["DeploymentSpec"])
    _handler_checks(schemas)
    schemas.update(_scoring_schemas())
    schemas.update(_admin_schemas())
    schemas.update(_security_schemas())
    return schemas


def _hoist(
    schemas: dict[str, Any],
    model: type[BaseModel],
    mode: Literal["validation", "serialization"] = "validation",
) -> None:
    """Add ``model``'s JSON schema and its ``$defs`` to ``schemas`` (refs point there)."""
    schema = model.model_json_schema(ref_template=_REF, mode=mode)
    for name, sub in schema.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[model.__name__] = schema


def _handler_checks(schemas: dict[str, Any]) -> None:
    """Write into the models' schemas what the handlers check beyond pydantic."""
    # admin.py: never a path or file:// URI (that would read the gateway's own disk).
    schemas["RegisterBody"]["properties"]["model_uri"]["pattern"] = "^(runs|models):/"
    # security/scopes.py check_scope: the scopes a key may hold.
    per_model = "|".join(PER_MODEL)
    schemas["KeyBody"]["properties"]["scopes"]["items"] = {
        "anyOf": [
            {"enum": sorted(PLAIN)},
            {
                "type": "string",
                "pattern": f"^({per_model}):([*]|[A-Za-z0-9][A-Za-z0-9._-]{{0,127}})$",
            },
        ]
    }


def _deploy_body(spec: dict[str, Any]) -> dict[str, Any]:
    """DeploymentSpec without ``model``: the model is the path's ``{name}``."""
    body = copy.deepcopy(spec)
    body["properties"].pop("model")
    body["required"] = [f for f in body.get("required", []) if f != "model"]
    if not body["required"]:
        del body["required"]
    body["title"] = "DeployBody"
    body["description"] = f"{DeploymentSpec.__name__} fields but `model` (the path's name)."
    return body


def _scoring_schemas() -> dict[str, Any]:
    def one(key: str, value: dict[str, Any]) -> dict[str, Any]:
        return _object({key: value, "params": {"type": "object"}}, required=(key,))

    return {
        "DataframeSplit": _object(
            {
                "columns": {"type": "array", "items": {"type": "string"}},
                "data": {"type": "array", "minItems": 1, "items": {"type": "array"}},
                "index": {"type": "array"},
            },
            required=("columns", "data"),
        ),
        "ScoringRequest": {
            "description": "MLflow's scoring formats (as `mlflow models serve`): a JSON object "
            "with exactly one of `dataframe_split`, `dataframe_records`, `instances`, `inputs`.",
            "type": "object",
            "oneOf": [
                one("dataframe_split", {"$ref": _REF.format(model="DataframeSplit")}),
                one(
                    "dataframe_records",
                    {"type": "array", "minItems": 1, "items": {"type": "object"}},
                ),
                one("instances", {"type": "array", "minItems": 1}),
                one(
                    "inputs",
                    {
                        "anyOf": [
                            {"type": "array", "minItems": 1},
                            {"type": "object", "minProperties": 1},
                        ]
                    },
                ),
            ],
        },
        "Predictions": _object(
            {
                "predictions": {
                    "description": "One prediction per input row (a mapping when the model "
                    "answers one).",
                    "anyOf": [{"type": "array"}, {"type": "object"}],
                }
            }
        ),
        "ModelMetadata": _object(
            {
                "name": {"type": "string"},
                "version": {"type": "string"},
                "inputs": {
                    "description": "The version's input signature (MLflow's schema), if any.",
                    "anyOf": [{"type": "array"}, {"type": "object"}, {"type": "null"}],
                },
            }
        ),
    }


def _admin_schemas() -> dict[str, Any]:
    status = {"$ref": _REF.format(model="ModelStatus")}
    return {
        "Traffic": _object(
            {
                "model": {"type": "string"},
                "primary": {"type": "string"},
                "canary": {"anyOf": [{"$ref": _REF.format(model="Canary")}, {"type": "null"}]},
                "shadow": {"anyOf": [{"$ref": _REF.format(model="Shadow")}, {"type": "null"}]},
                "answered": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "Requests answered by this replica, per version.",
                },
                "agreement": {
                    "type": "object",
                    "additionalProperties": {"type": "integer"},
                    "description": "Shadow only: requests, rows, agree, errors, dropped.",
                },
            },
            required=("model", "primary", "canary", "shadow", "answered"),
        ),
        "PromoteAnswer": _object(
            {
                "model": {"type": "string"},
                "alias": {"type": "string"},
                "version": {"type": "string"},
                "status": status,
            },
            required=("model", "alias", "version"),
        ),
        "RollbackAnswer": _object(
            {
                "model": {"type": "string"},
                "alias": {"type": "string"},
                "version": {
                    "anyOf": [{"type": "string"}, {"type": "null"}],
                    "description": "Where the alias points now.",
                },
                "status": status,
            },
            required=("model", "alias"),
        ),
        "UndeployAnswer": _object({"model": {"type": "string"}, "undeployed": {"const": True}}),
        "ApplyAnswer": {
            "type": "object",
            "description": "What became of each model of the file.",
            "additionalProperties": {"enum": ["unchanged", "created", "updated", "reconciled"]},
        },
    }


def _security_schemas() -> dict[str, Any]:
    return {
        "NewKey": {
            "description": "A new key's record with the key itself, shown only this once.",
            "allOf": [_ref("KeyRecord")],
            "type": "object",
            "properties": {"key": {"type": "string", "description": "maas_<id>_<secret>"}},
            "required": ["key"],
        }
    }


def _object(
    properties: dict[str, Any],
    *,
    required: Sequence[str] | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """An object schema; every property required unless ``required`` says otherwise."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties if required is None else required),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


# -- paths ---------------------------------------------------------------------------
def _paths(model_name: dict[str, Any]) -> dict[str, Any]:
    """One operation per route of the table, grouped by path template."""
    paths: dict[str, Any] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _route_operation(route, model_name)
    return paths


def _route_operation(route: Route, model_name: dict[str, Any]) -> dict[str, Any]:
    errors = [str(code) for code in route.errors]
    body = None
    if route.body == "ScoringRequest":  # predict also takes CSV
        errors += ["405"]
        body = {
            "required": True,
            "content": {JSON: {"schema": _ref(route.body)}, CSV: {"schema": {"type": "string"}}},
        }
    elif route.body is not None:
        body = _json_body(route.body, required=route.body_required)
    if body is not None:
        errors = [*_BODY_ERRORS, *errors]
    return _operation(
        route.name,
        route.summary,
        route.tag,
        route.scopes,
        ok=_answer(route),
        status=202 if route.long else route.status,
        errors=errors,
        params=[_path_parameter(route, p, model_name) for p in _placeholders(route.path)]
        + [{"$ref": f"#/components/parameters/{p}"} for p in route.params],
        body=body,
    )


def _answer(route: Route) -> dict[str, Any]:
    if route.long:
        # The call answers the operation at once; its result, once done, is the answer.
        result = route.answer.strip("[]")
        return {
            "description": f"{route.summary} Started as an operation (`Location`: "
            f"{BY_NAME['operation'].path}); once it succeeds, its `result` is a {result}. "
            "A refusal within the first moments (bad version, no room) is answered as that "
            "error instead.",
            "headers": {"Location": {"schema": {"type": "string"}}},
            "content": {JSON: {"schema": _ref("Operation")}},
        }
    if route.answer == "OpenAPI":
        return _ok("The OpenAPI document.", {"type": "object"})
    if route.answer == "Page":
        return {"description": route.summary, "content": {"text/html": {"schema": _TEXT}}}
    if route.answer == "Asset":
        types = sorted(set(ASSETS.values()))
        return {"description": route.summary, "content": {t: {"schema": _TEXT} for t in types}}
    many = route.answer.startswith("[")
    schema = _list(route.answer.strip("[]")) if many else _ref(route.answer)
    headers = None
    if route.answer == "Predictions":
        version = {"description": "The model version that answered.", "schema": {"type": "string"}}
        headers = {VERSION_HEADER: version}
    return _ok(route.summary, schema, headers=headers)


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _path_parameter(route: Route, name: str, model_name: dict[str, Any]) -> dict[str, Any]:
    if name == "name" and route.app == "model":
        return _path_param("name", model_name, "A deployed model.")
    if name == "name":
        return {"$ref": "#/components/parameters/admin_name"}
    if name == "asset":
        return _path_param("asset", {"enum": sorted(ASSETS)}, "One of the page's files.")
    if name == "version":
        return {"$ref": "#/components/parameters/version"}
    what = {"key_id": "The key's id.", "op_id": "The operation's id (from its 202 answer)."}
    return _path_param(name, {"type": "string", "minLength": 1}, what.get(name, name))


# -- building blocks -----------------------------------------------------------------
def _operation(
    op_id: str,
    summary: str,
    tag: str,
    scopes: Sequence[str] | None,
    *,
    ok: dict[str, Any],
    status: int = 200,
    errors: Sequence[str] = (),
    params: list[Any] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One operation. ``scopes``: None for a public route, () for any valid credential,
    else the scopes of which any one opens it (``admin`` always does). ``status``:
    that of the success answer."""
    responses: dict[str, Any] = {str(status): ok}
    if scopes is not None:
        codes = {"401", *errors} | ({"403"} if scopes else set())
        for code in sorted(codes):
            responses[code] = {"$ref": f"#/components/responses/{_ERRORS[code][0]}"}
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": summary,
        "tags": [tag],
        "responses": responses,
    }
    if scopes is None:
        op["security"] = []
    elif scopes:
        opening = list(dict.fromkeys((*scopes, _ADMIN)))
        op["security"] = [{BEARER: [s]} for s in opening]
        op["description"] = "Scope: " + " or ".join(f"`{s}`" for s in opening) + "."
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    return op


def _ok(
    description: str, schema: dict[str, Any], headers: dict[str, Any] | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        answer["headers"] = headers
    return answer


def _error_responses() -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for code, (name, description) in _ERRORS.items():
        answer = _ok(description, _ref("Error"))
        if code in ("401", "403"):
            answer["headers"] = {
                "WWW-Authenticate": {
                    "description": 'The challenge of RFC 6750: `Bearer realm="maas"` (403: '
                    'with `error="insufficient_scope"`).',
                    "required": True,
                    "schema": {"type": "string"},
                }
            }
        responses[name] = answer
    return responses


def _parameters() -> dict[str, Any]:
    return {
        "admin_name": _path_param(
            "name", {"type": "string", "minLength": 1}, "A registered model's name."
        ),
        "version": _path_param(
            "version",
            {"type": "string", "pattern": "^[1-9][0-9]{0,8}$"},
            "A version number (MLflow numbers a model's versions 1, 2, ...).",
        ),
        "actor": {
            "name": ACTOR_HEADER,
            "in": "header",
            "required": False,
            "description": "Who asks, recorded in the history as `api:<actor>`.",
            "schema": {"type": "string"},
        },
        "audit_model": _query("model", {"type": "string"}, "Only this model's records."),
        "audit_action": _query("action", {"type": "string"}, "Only this action's records."),
        "audit_limit": _query(
            "limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100}, "At most."
        ),
        "timeout_s": {
            "name": "timeout_s",
            "in": "query",
            "required": False,
            "description": "Seconds the change may take to run (default and most: the "
            "platform's MAAS_DEPLOY_TIMEOUT_S); past it, what ran before is put back.",
            "schema": {"type": "integer", "minimum": 1},
        },
    }


def _path_param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {**_query(name, schema, description), "in": "path", "required": True}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {JSON: {"schema": _ref(schema)}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}
