"""The OpenAPI 3.1 document of maas_ray's HTTP surface (served at ``GET /openapi.json``).

One operation per route of the table (``maas_ray.routes``), grouped by path
template. The component schemas come from the pydantic models that validate
requests and answers (:mod:`maas_ray.gateway.schemas`); the shared error
responses and parameters are in :mod:`maas_ray.gateway.components`.

Every operation needs ``Authorization: Bearer <credential>`` (an API key
``maas_...`` or a JWT) except the health routes; its security requirement names
the scopes that open it (OpenAPI 3.1 role names; several requirements: any one).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from maas_ray.gateway import console, docs
from maas_ray.gateway.components import (
    _ERRORS,
    _error_responses,
    _json_body,
    _ok,
    _parameters,
    _path_param,
)
from maas_ray.gateway.schemas import _list, _ref, _schemas
from maas_ray.routes import BY_NAME, ROUTES, Route
from maas_ray.serving.oip_answer import OCTETS
from maas_ray.wire import CSV, IMAGES, JSON, VERSION_HEADER

OPENAPI_VERSION = "3.1.0"
BEARER = "bearer"
_TEXT = {"type": "string"}
_ADMIN = "admin"
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
            {
                "name": "oip",
                "description": "The Open Inference Protocol v2 (KServe, Triton, MLServer "
                "clients): every served model, same keys and scopes as /v1/models.",
            },
            {"name": "admin", "description": "Management: status, lifecycle, registry."},
            {"name": "security", "description": "API keys and the audit log."},
            {"name": "docs", "description": "This document; no credential."},
            {
                "name": "console",
                "description": "The web console: the page is public, its calls carry a key.",
            },
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
    if route.body == "ScoringRequest":  # predict also takes CSV, and an image as one input
        errors += ["405"]
        image = {"schema": {"type": "string", "format": "binary"}}
        body = {
            "required": True,
            "content": {
                JSON: {"schema": _ref(route.body)},
                CSV: {"schema": {"type": "string"}},
                **{mime: image for mime in IMAGES},
            },
        }
    elif route.body == "OipInferenceRequest":  # also as the binary tensor extension
        errors += ["405"]
        octets = {"type": "string", "format": "binary"}
        body = {
            "required": True,
            "content": {JSON: {"schema": _ref(route.body)}, OCTETS: {"schema": octets}},
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
    if route.answer == "Metrics":
        text = {"text/plain": {"schema": _TEXT}}
        return {"description": f"{route.summary} (Prometheus text format 0.0.4)", "content": text}
    if route.answer == "Asset":
        types = sorted(set(_assets(route).values()))
        return {"description": route.summary, "content": {t: {"schema": _TEXT} for t in types}}
    if route.answer == "OipInferenceResponse":  # binary outputs follow the JSON header
        answer = _ok(route.summary, _ref(route.answer))
        answer["content"][OCTETS] = {"schema": {"type": "string", "format": "binary"}}
        answer["headers"] = {
            "Inference-Header-Content-Length": {
                "description": "With binary outputs: the JSON header's length in bytes.",
                "schema": {"type": "integer"},
            }
        }
        return answer
    many = route.answer.startswith("[")
    schema = _list(route.answer.strip("[]")) if many else _ref(route.answer)
    headers = None
    if route.answer == "Predictions":
        version = {"description": "The model version that answered.", "schema": {"type": "string"}}
        headers = {VERSION_HEADER: version}
    return _ok(route.summary, schema, headers=headers)


def _assets(route: Route) -> dict[str, str]:
    """The files (name -> content type) a page's asset route serves."""
    return console.ASSETS if route.tag == "console" else docs.ASSETS


def _placeholders(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def _path_parameter(route: Route, name: str, model_name: dict[str, Any]) -> dict[str, Any]:
    if name == "name" and (route.app == "model" or route.tag == "oip"):
        return _path_param("name", model_name, "A deployed model.")
    if name == "name":
        return {"$ref": "#/components/parameters/admin_name"}
    if name == "asset":
        return _path_param("asset", {"enum": sorted(_assets(route))}, "One of the page's files.")
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
    elif not scopes:
        op["security"] = [{BEARER: []}]
        op["description"] = "Any valid credential."
    else:
        opening = list(dict.fromkeys((*scopes, _ADMIN)))
        op["security"] = [{BEARER: [s]} for s in opening]
        op["description"] = "Scope: " + " or ".join(f"`{s}`" for s in opening) + "."
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = body
    return op
