"""The component schemas of the OpenAPI document (``components/schemas``).

Request and answer schemas come from the pydantic models that validate them
(``model_json_schema()``: JSON Schema 2020-12, which OpenAPI 3.1 takes as is);
their ``$defs`` are hoisted into ``components/schemas`` and every ``$ref`` points
there, and what the handlers check beyond the models (URI schemes, known scopes)
is added to them. What has no pydantic model (MLflow's scoring formats, small
answers) is written out here.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel

from maas_ray.control.status import ModelStatus, NodeResources, Operation, TrafficReport
from maas_ray.explain.answer import Explanations
from maas_ray.gateway.bodies import Identity, KeyBody, PromoteBody, RegisterBody, RollbackBody
from maas_ray.monitoring.models import (
    FeedbackAnswer,
    FeedbackItem,
    MonitoringReport,
    RetrainBody,
    RetrainState,
)
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.security.audit import AuditRecord
from maas_ray.security.keys import KeyRecord
from maas_ray.security.scopes import PER_MODEL, PLAIN
from maas_ray.serving.oip import InferenceRequest
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, Shadow
from maas_ray.training.result import JobInfo, TrainResult
from maas_ray.training_spec import FinetuneBody, TrainingSpec, TuningSpec

_REF = "#/components/schemas/{model}"
_MODELS: tuple[type[BaseModel], ...] = (
    ModelStatus,
    TrafficReport,
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
    Identity,
    AuditRecord,
    Operation,
    TrainingSpec,
    TuningSpec,
    FinetuneBody,
    TrainResult,
    JobInfo,
    FeedbackItem,
    FeedbackAnswer,
    MonitoringReport,
    RetrainBody,
    RetrainState,
    Explanations,
)


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
    schemas.update(_oip_schemas())
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
                "outputs": {
                    "description": "The version's output signature (MLflow's schema), if any.",
                    "anyOf": [{"type": "array"}, {"type": "object"}, {"type": "null"}],
                },
                "params": {
                    "description": "The parameters a predict may pass in `params` (MLflow's "
                    "params schema: name, type, default, shape), if the version has any.",
                    "anyOf": [{"type": "array"}, {"type": "null"}],
                },
            }
        ),
    }


def _oip_schemas() -> dict[str, Any]:
    """The Open Inference Protocol v2 bodies (serving/oip.py, serving/oip_answer.py)."""
    text, flag = {"type": "string"}, {"type": "boolean"}
    shape = {"type": "array", "items": {"type": "integer"}}
    request = InferenceRequest.model_json_schema(ref_template=_REF.replace("{model}", "Oip{model}"))
    out = {f"Oip{name}": sub for name, sub in request.pop("$defs", {}).items()}
    tensor = _object({"name": text, "datatype": text, "shape": shape})
    output = _object(
        {**tensor["properties"], "data": {"type": "array"}, "parameters": {"type": "object"}},
        required=("name", "datatype", "shape"),
    )
    return {
        **out,
        "OipInferenceRequest": request,
        "OipServerMetadata": _object(
            {"name": text, "version": text, "extensions": {"type": "array", "items": text}}
        ),
        "OipServerLive": _object({"live": flag}),
        "OipServerReady": _object({"ready": flag, "error": text}, required=("ready",)),
        "OipModelReady": _object(
            {"name": text, "ready": flag, "error": text}, required=("name", "ready")
        ),
        "OipTensorMetadata": tensor,
        "OipModelMetadata": _object(
            {
                "name": text,
                "versions": {"type": "array", "items": text},
                "platform": text,
                "inputs": _list("OipTensorMetadata"),
                "outputs": _list("OipTensorMetadata"),
            }
        ),
        "OipOutputTensor": output,
        "OipInferenceResponse": _object(
            {
                "model_name": text,
                "model_version": text,
                "id": text,
                "outputs": _list("OipOutputTensor"),
                "parameters": {"type": "object"},
            },
            required=("model_name", "model_version", "outputs"),
        ),
    }


def _admin_schemas() -> dict[str, Any]:
    status = {"$ref": _REF.format(model="ModelStatus")}
    return {
        "JobLogs": _object(
            {"id": {"type": "string"}, "logs": {"type": "string"}},
            description="A job's log so far.",
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
        "FeedbackBody": {
            "description": "One label, or a list of at most 10,000.",
            "anyOf": [
                _ref("FeedbackItem"),
                {"type": "array", "items": _ref("FeedbackItem"), "minItems": 1, "maxItems": 10_000},
            ],
        },
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


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": _REF.format(model=name)}


def _list(name: str) -> dict[str, Any]:
    return {"type": "array", "items": _ref(name)}
