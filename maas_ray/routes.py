"""Every HTTP route of the platform, declared once, as data.

Each route names its method, path template, the scopes that open it, the Serve
application that answers it, and the schemas and errors of the OpenAPI
document. Everything else derives from this table: the guard's scope check
(``security/auth.py``), each application's dispatch (a handler is registered
under the route's name), the OpenAPI document, and the paths the SDK and the CLI
call (``url``). No other module spells a URL; how a route is declared and matched
is ``routing.py``.

The table is on the ground floor: every replica's guard reads it on every
request, and the CLI imports it without Ray.
"""

from __future__ import annotations

from typing import Any

from maas_ray.routing import Match, Route, match_in

__all__ = ["ROUTES", "BY_NAME", "Match", "Route", "match", "url", "model_prefix"]

# Scopes that read the platform's state: any one of them opens a GET under /v1/admin.
READERS = ("metrics", "deploy", "register")
ADMIN_PREFIX = "/v1/admin"
MODELS_PREFIX = "/v1/models"
OIP_PREFIX = "/v2/models"


def _model(
    name: str, method: str, rest: str, scope: str, summary: str, answer: str, **kw: Any
) -> Route:
    path = MODELS_PREFIX + "/{name}" + rest
    return Route(name, method, path, (scope,), "model", "models", summary, answer=answer, **kw)


def _public(name: str, path: str, tag: str, summary: str, answer: str, **kw: Any) -> Route:
    return Route(name, "GET", path, None, "gateway", tag, summary, answer=answer, **kw)


def _admin(name: str, method: str, rest: str, scopes: tuple[str, ...], **kw: Any) -> Route:
    tag = "security" if rest.startswith(("/keys", "/audit")) else "admin"
    return Route(name, method, ADMIN_PREFIX + rest, scopes, "admin", tag, **kw)


def _read(name: str, rest: str, summary: str, answer: str, **kw: Any) -> Route:
    return _admin(name, "GET", rest, READERS, summary=summary, answer=answer, **kw)


def _change(name: str, rest: str, summary: str, answer: str, body: str | None, **kw: Any) -> Route:
    """A lifecycle POST: may start replicas (500 deployment_failed) or find no room (409)."""
    kw.setdefault("errors", (404, 409, 500))
    kw.setdefault("params", ("actor", "timeout_s"))
    return _admin(
        name, "POST", rest, ("deploy",), summary=summary, answer=answer, body=body, long=True, **kw
    )


def _oip(name: str, method: str, rest: str, summary: str, answer: str, **kw: Any) -> list[Route]:
    """An OIP v2 model route, and its twin for one version (``.../versions/{version}``)."""
    base, scopes = OIP_PREFIX + "/{name}", (_PREDICT,)
    twin = name.replace("v2_model", "v2_version") if "model" in name else name + "_version"
    return [
        Route(name, method, base + rest, scopes, "gateway", "oip", summary, answer=answer, **kw),
        Route(twin, method, base + "/versions/{version}" + rest, scopes, "gateway", "oip",
              summary, answer=answer, **kw),
    ]  # fmt: skip


def _keys(name: str, method: str, rest: str, summary: str, answer: str, **kw: Any) -> Route:
    return _admin(name, method, rest, ("admin",), summary=summary, answer=answer, **kw)


_PREDICT = "predict:{name}"
_HEALTH = "Health check (no credential)."
_PREDICTS = "Predict; any method but POST answers 405."
_EXPLAINS = (
    "Explain predictions (the predict body): per row, the prediction and each feature's "
    "or token's contribution to it, ranked by size (SHAP, integrated gradients); a model "
    "no explainer fits answers 422 not_explainable. An image model's rows also get a "
    "saliency map, and with `?format=png` its PNG heat map."
)
_NAMED = "/models/{name}"
_SCORING = {"body": "ScoringRequest", "errors": (404,)}
_EXPLAIN = {**_SCORING, "params": ("explain_format",)}
_FOUND = {"errors": (404,)}
_JOBS = ("train", "metrics")  # who may read jobs

ROUTES: tuple[Route, ...] = (
    # The data plane first: the guard tries routes in order, predict is the hot path.
    _model("predict", "POST", "/predict", _PREDICT, _PREDICTS, "Predictions", **_SCORING),
    _model(
        "predict_version",
        "POST",
        "/versions/{version}/predict",
        _PREDICT,
        _PREDICTS,
        "Predictions",
        **_SCORING,
    ),
    _model("explain", "POST", "/explain", _PREDICT, _EXPLAINS, "Explanations", **_EXPLAIN),
    _model(
        "explain_version",
        "POST",
        "/versions/{version}/explain",
        _PREDICT,
        _EXPLAINS,
        "Explanations",
        **_EXPLAIN,
    ),
    _model(
        "model_metadata",
        "GET",
        "",
        _PREDICT,
        "Model metadata: name, version, input signature.",
        "ModelMetadata",
        **_FOUND,
    ),
    _model(
        "version_metadata",
        "GET",
        "/versions/{version}",
        _PREDICT,
        "Metadata of one served version.",
        "ModelMetadata",
        **_FOUND,
    ),
    _model(
        "traffic",
        "GET",
        "/traffic",
        "metrics",
        "Traffic split and answers per version (this replica's view).",
        "TrafficReport",
        **_FOUND,
    ),
    _model(
        "feedback",
        "POST",
        "/feedback",
        "feedback:{name}",
        "Ground truth for earlier predictions, by their x-request-id (one label or a "
        "list); answers 202 with how many joined a logged prediction.",
        "FeedbackAnswer",
        body="FeedbackBody",
        status=202,
        errors=(404, 503),
    ),
    Route(
        "monitoring",
        "GET",
        MODELS_PREFIX + "/{name}/monitoring",
        ("metrics", _PREDICT),
        "model",
        "models",
        "Per version and arm (production, canary, shadow): requests, errors, latency "
        "percentiles, and accuracy/F1 or MAE/RMSE from the labels, over a window and "
        "all time.",
        answer="MonitoringReport",
        errors=(404, 503),
        params=("window_s", "buckets"),
    ),
    Route(
        "metrics",
        "GET",
        "/metrics",
        ("metrics",),
        "gateway",
        "monitoring",
        "Prometheus text format from Ray's metrics exporter on every node: the platform's "
        "maas_* families (requests by status, batch sizes, quality, drift) and Serve's "
        "ray_serve_* (latency histograms, in-flight requests, replicas).",
        answer="Metrics",
    ),
    # The Open Inference Protocol v2 (KServe, Triton, MLServer clients), every model.
    *_oip(
        "v2_model",
        "GET",
        "",
        "Model metadata (OIP v2): inputs and outputs with "
        "datatypes and shapes, from the signature.",
        "OipModelMetadata",
        errors=(404, 503),
    ),
    *_oip(
        "v2_model_ready",
        "GET",
        "/ready",
        "Model readiness (OIP v2): 200 when its replicas answer, 503 while they start.",
        "OipModelReady",
        errors=(404, 503),
    ),
    *_oip(
        "v2_infer",
        "POST",
        "/infer",
        "Inference (OIP v2): JSON tensors, or binary ones "
        "after a JSON header (Inference-Header-Content-Length); with parameters "
        '{"explain": true} an `explanations` output too (BYTES, one JSON text per row).',
        "OipInferenceResponse",
        body="OipInferenceRequest",
        errors=(404, 503),
    ),
    _public("healthz", "/healthz", "health", _HEALTH, "Health"),
    _public(
        "v2_server",
        "/v2",
        "health",
        "Server metadata (OIP v2): name, version, extensions; no credential.",
        "OipServerMetadata",
    ),
    _public(
        "v2_live", "/v2/health/live", "health", "Liveness (OIP v2); no credential.", "OipServerLive"
    ),
    _public(
        "v2_ready",
        "/v2/health/ready",
        "health",
        "Readiness (OIP v2): 503 while an application has no running replica; no credential.",
        "OipServerReady",
        errors=(503,),
    ),
    _public("openapi", "/openapi.json", "docs", "This API's OpenAPI 3.1 document.", "OpenAPI"),
    _public("docs", "/docs", "docs", "This API in a browser (Swagger UI, served here).", "Page"),
    _public(
        "docs_asset",
        "/docs/{asset}",
        "docs",
        "A file of the /docs page (Swagger UI's script, style sheet, icons).",
        "Asset",
        **_FOUND,
    ),
    _public("console", "/console", "console", "The web console (sign in with a key).", "Page"),
    _public(
        "console_asset",
        "/console/{asset}",
        "console",
        "A file of the /console page (its script, style sheet, the chart library).",
        "Asset",
        **_FOUND,
    ),
    _admin(
        "whoami",
        "GET",
        "/whoami",
        (),
        summary="The credential asking: its name and scopes, and where the MLflow UI is.",
        answer="Identity",
    ),
    _read("status", "/status", "One row per deployed model.", "[ModelStatus]"),
    _read(
        "cluster",
        "/cluster",
        "Per node: logical CPU/GPU used of total, host memory used of total.",
        "[NodeResources]",
    ),
    _read("list_models", "/models", "Registered models.", "[ModelInfo]"),
    _read("show_model", _NAMED, "One registered model.", "ModelInfo", **_FOUND),
    _read(
        "history",
        _NAMED + "/history",
        "Alias moves and deploy actions.",
        "[HistoryEvent]",
        **_FOUND,
    ),
    _admin(
        "register",
        "POST",
        _NAMED + "/versions",
        ("register",),
        summary="Register a new version.",
        body="RegisterBody",
        answer="VersionInfo",
        status=201,
        errors=(404,),
        params=("actor",),
    ),
    _change(
        "deploy",
        _NAMED + "/deploy",
        "Deploy (or redeploy) the model; no body: the defaults, latest version.",
        "ModelStatus",
        "DeployBody",
        body_required=False,
    ),
    _change("undeploy", _NAMED + "/undeploy", "Stop serving the model.", "UndeployAnswer", None),
    _change(
        "promote",
        _NAMED + "/promote",
        "Point an alias at a version.",
        "PromoteAnswer",
        "PromoteBody",
    ),
    _change(
        "rollback",
        _NAMED + "/rollback",
        "End a canary or shadow, else move the alias back one step.",
        "RollbackAnswer",
        "RollbackBody",
        body_required=False,
    ),
    _change("canary", _NAMED + "/canary", "Start or change a canary.", "ModelStatus", "Canary"),
    _change("shadow", _NAMED + "/shadow", "Start or change a shadow.", "ModelStatus", "Shadow"),
    _change(
        "apply",
        "/apply",
        "Make a MaasDeployments file's specs the stored ones (all or nothing).",
        "ApplyAnswer",
        "DeploymentFile",
    ),
    _read(
        "operations",
        "/operations",
        "The newest management operations (deploys, canaries, ...), newest first.",
        "[Operation]",
    ),
    _read(
        "operation",
        "/operations/{op_id}",
        "One operation: its state, the steps done, its result or error.",
        "Operation",
        **_FOUND,
    ),
    _admin(
        "train",
        "POST",
        "/train",
        ("train",),
        summary="Train a pipeline as a Ray job; answers 202 with the job at once.",
        body="TrainingSpec",
        answer="JobInfo",
        status=202,
        errors=(503,),
        params=("actor",),
    ),
    _admin(
        "tune",
        "POST",
        "/tune",
        ("train",),
        summary="Search a pipeline's hyperparameters with Ray Tune as a Ray job, register "
        "the best; answers 202 with the job at once.",
        body="TuningSpec",
        answer="JobInfo",
        status=202,
        errors=(503,),
        params=("actor",),
    ),
    _admin(
        "finetune",
        "POST",
        _NAMED + "/finetune",
        ("train",),
        summary="Fine-tune a PyTorch version with Ray Train as a Ray job; answers 202 "
        "with the job at once.",
        body="FinetuneBody",
        answer="JobInfo",
        status=202,
        errors=(404, 503),
        params=("actor",),
    ),
    _admin(
        "retrain",
        "POST",
        _NAMED + "/retrain",
        ("train",),
        summary="Retrain the serving version on its labelled predictions as a Ray job; the "
        "result then runs as a canary and is promoted only if it beats production on the "
        "labels that follow. Answers 202 with the retrain's state at once.",
        body="RetrainBody",
        body_required=False,
        answer="RetrainState",
        status=202,
        errors=(404, 409, 503),
        params=("actor",),
    ),
    _admin(
        "retrain_state",
        "GET",
        _NAMED + "/retrain",
        ("train", *READERS),
        summary="The model's last retrain: its step, job, version and decision.",
        answer="RetrainState",
        **_FOUND,
    ),
    _admin("jobs", "GET", "/jobs", _JOBS, summary="Ray jobs, newest first.", answer="[JobInfo]"),
    _admin(
        "job",
        "GET",
        "/jobs/{job_id}",
        _JOBS,
        summary="One job: status, stage, and the result of a finished training.",
        answer="JobInfo",
        **_FOUND,
    ),
    _admin(
        "job_logs",
        "GET",
        "/jobs/{job_id}/logs",
        _JOBS,
        summary="A job's log so far.",
        answer="JobLogs",
        **_FOUND,
    ),
    _admin(
        "stop_job",
        "POST",
        "/jobs/{job_id}/stop",
        ("train",),
        summary="Stop a job (a finished one stays as it ended).",
        answer="JobInfo",
        errors=(404,),
        params=("actor",),
    ),
    _keys("list_keys", "GET", "/keys", "Every API key (never the secrets).", "[KeyRecord]"),
    _keys(
        "create_key",
        "POST",
        "/keys",
        "Create an API key; the answer holds the key, shown only this once.",
        "NewKey",
        body="KeyBody",
        status=201,
        params=("actor",),
    ),
    _keys(
        "revoke_key",
        "DELETE",
        "/keys/{key_id}",
        "Revoke an API key (kept, marked revoked; revoking twice is harmless).",
        "KeyRecord",
        errors=(404,),
        params=("actor",),
    ),
    _keys(
        "audit",
        "GET",
        "/audit",
        "The newest management actions, oldest first.",
        "[AuditRecord]",
        errors=(422,),
        params=("audit_model", "audit_action", "audit_limit"),
    ),
)

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
