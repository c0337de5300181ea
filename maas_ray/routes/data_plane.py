"""The data plane's routes: each model's own (predict, explain, metadata, traffic,
feedback, monitoring), the Open Inference Protocol v2's for every model, and the
public ones (health, the OpenAPI document and its page, the console)."""

from __future__ import annotations

from typing import Any

from maas_ray.routing import Route

MODELS_PREFIX = "/v1/models"
OIP_PREFIX = "/v2/models"
PREDICT = "predict:{name}"  # the scope that opens a model's data-plane routes


def _model(
    name: str, method: str, rest: str, scope: str, summary: str, answer: str, **kw: Any
) -> Route:
    path = MODELS_PREFIX + "/{name}" + rest
    return Route(name, method, path, (scope,), "model", "models", summary, answer=answer, **kw)


def _public(name: str, path: str, tag: str, summary: str, answer: str, **kw: Any) -> Route:
    return Route(name, "GET", path, None, "gateway", tag, summary, answer=answer, **kw)


def _oip(name: str, method: str, rest: str, summary: str, answer: str, **kw: Any) -> list[Route]:
    """An OIP v2 model route, and its twin for one version (``.../versions/{version}``)."""
    base, scopes = OIP_PREFIX + "/{name}", (PREDICT,)
    twin = name.replace("v2_model", "v2_version") if "model" in name else name + "_version"
    return [
        Route(name, method, base + rest, scopes, "gateway", "oip", summary, answer=answer, **kw),
        Route(twin, method, base + "/versions/{version}" + rest, scopes, "gateway", "oip",
              summary, answer=answer, **kw),
    ]  # fmt: skip


_HEALTH = "Health check (no credential)."
_PREDICTS = "Predict; any method but POST answers 405."
_EXPLAINS = (
    "Explain predictions (the predict body): per row, the prediction and each feature's "
    "or token's contribution to it, ranked by size (SHAP, integrated gradients); a model "
    "no explainer fits answers 422 not_explainable. An image model's rows also get a "
    "saliency map, and with `?format=png` its PNG heat map."
)
_SCORING = {"body": "ScoringRequest", "errors": (404,)}
_EXPLAIN = {**_SCORING, "params": ("explain_format",)}
_FOUND = {"errors": (404,)}

DATA_PLANE: tuple[Route, ...] = (
    # Predict first: the guard tries routes in order, and it is the hot path.
    _model("predict", "POST", "/predict", PREDICT, _PREDICTS, "Predictions", **_SCORING),
    _model(
        "predict_version",
        "POST",
        "/versions/{version}/predict",
        PREDICT,
        _PREDICTS,
        "Predictions",
        **_SCORING,
    ),
    _model("explain", "POST", "/explain", PREDICT, _EXPLAINS, "Explanations", **_EXPLAIN),
    _model(
        "explain_version",
        "POST",
        "/versions/{version}/explain",
        PREDICT,
        _EXPLAINS,
        "Explanations",
        **_EXPLAIN,
    ),
    _model(
        "model_metadata",
        "GET",
        "",
        PREDICT,
        "Model metadata: name, version, input signature.",
        "ModelMetadata",
        **_FOUND,
    ),
    _model(
        "version_metadata",
        "GET",
        "/versions/{version}",
        PREDICT,
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
        ("metrics", PREDICT),
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
)
