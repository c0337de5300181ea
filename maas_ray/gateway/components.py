"""The reusable responses and parameters of the OpenAPI document.

``components/responses`` holds one answer per error status (each the ``Error``
schema) and ``components/parameters`` the parameters several operations share;
the schemas themselves are in :mod:`maas_ray.gateway.schemas`. The small builders
of answers, parameters and request bodies are here too.
"""

from __future__ import annotations

from typing import Any

from maas_ray.gateway.schemas import _ref
from maas_ray.wire import ACTOR_HEADER, JSON

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
    "503": (
        "Unavailable",
        "A part of the platform does not answer (Ray's job API, the registry). "
        "Code: `platform_unavailable`.",
    ),
}


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
        "window_s": _query(
            "window_s",
            {"type": "number", "exclusiveMinimum": 0, "maximum": 31_536_000},
            "The sliding window in seconds (default: the platform's MAAS_MONITOR_WINDOW_S).",
        ),
        "buckets": _query(
            "buckets",
            {"type": "integer", "minimum": 0, "maximum": 500, "default": 0},
            "Also give the window as this many equal buckets (`series`, for charts).",
        ),
        "explain_format": _query(
            "format",
            {"type": "string", "enum": ["json", "png"], "default": "json"},
            "`png`: each row's saliency map also as a PNG heat map, base64, in "
            "`saliency_png` (image models only; another model answers 400).",
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
