"""The Python SDK: ``from maas_ray import MaaS``.

A thin, authenticated HTTP client of the platform's management API and model
routes; the platform checks the key's scopes and writes the audit log. Only
``register`` of a Python object works locally first: it logs the model to
MLflow, then asks the platform to register that URI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from maas_ray.control.status import ModelStatus, NodeResources, Operation, TrafficReport
from maas_ray.explain.answer import Explanations
from maas_ray.lifecycle import Lifecycle
from maas_ray.monitoring.models import FeedbackAnswer, MonitoringReport
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.routes import url
from maas_ray.security.audit import AuditRecord
from maas_ray.security.keys import IssuedKey, KeyRecord
from maas_ray.settings import Settings
from maas_ray.trainer import Training
from maas_ray.transport import Transport
from maas_ray.wire import FORMATS, JSON, REQUEST_ID_HEADER, VERSION_HEADER

if TYPE_CHECKING:
    from maas_ray.in_cluster import Handles
    from maas_ray.registry import Registry


class MaaS(Lifecycle, Training):
    """Register, deploy and query models on a maas_ray platform.

    Args:
        settings: Platform settings; by default read from ``MAAS_*`` variables.
        in_cluster: ``predict`` over Serve handles (``maas_ray/in_cluster.py``) instead
            of HTTP: same canary split, shadow, validation and answers, no key needed;
            by default when this runs in a Ray task or actor.
        **overrides: Individual settings, e.g. ``serve_port=8001``.
    """

    def __init__(
        self, settings: Settings | None = None, *, in_cluster: bool | None = None, **overrides: Any
    ) -> None:
        self.settings = settings or Settings(**overrides)
        self._artifacts: Registry | None = None
        self._http = Transport(self.settings)
        self._handles = handles_for(in_cluster)

    @property
    def _store(self) -> Registry:
        """The MLflow artifact store a new version's files are uploaded to.

        Only MLflow's own artifact upload, done before ``register`` asks the
        platform to register the URI: it is not a way to change the registry,
        which only the authenticated management API does. Checked to answer each
        time (one health probe), so an MLflow server that went down is said at once,
        not after MLflow's retries.
        """
        if self._artifacts is None:
            from maas_ray.registry import Registry

            self._artifacts = Registry(self.settings.mlflow_uri)
        self._artifacts.check()
        return self._artifacts

    # -- registry -----------------------------------------------------------
    def register(
        self,
        name: str,
        model: Any,
        *,
        input_example: Any = None,
        signature: Any = None,
        artifacts: dict[str, str] | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        background: Any = None,
    ) -> VersionInfo:
        """Register a new version of ``name``.

        Args:
            name: Registered model name.
            model: A scikit-learn estimator/pipeline, a ``torch.nn.Module``, an
                ``mlflow.pyfunc.PythonModel``, or the path of a models-from-code file.
            input_example: Example input; the signature is inferred from it.
            signature: An explicit ``mlflow.models.ModelSignature``.
            artifacts: Files handed to a PythonModel's ``load_context``.
            description: Version description.
            tags: Version tags.
            background: Rows like the model's input (a DataFrame, an array, texts), at
                most 1,000, stored in the version's folder: what ``explain`` compares
                with (without it, the input example).

        Returns:
            The new version, with its signature and SHA-256 digest.
        """
        uri = self._store.log(
            name,
            model,
            input_example=input_example,
            signature=signature,
            artifacts=artifacts,
            background=background,
        )
        return self._register(name, uri, description, tags)

    def register_uri(
        self,
        name: str,
        model_uri: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> VersionInfo:
        """Register an existing MLflow model (``runs:/``, ``models:/`` or a local folder)."""
        if "://" not in model_uri and ":/" not in model_uri:
            model_uri = self._store.upload(name, model_uri)
        return self._register(name, model_uri, description, tags)

    def _register(
        self, name: str, uri: str, description: str | None, tags: dict[str, str] | None
    ) -> VersionInfo:
        body = {"model_uri": uri, "description": description, "tags": tags}
        answer = self._admin("register", body, name=name)
        return VersionInfo.model_validate(answer)

    def models(self) -> list[ModelInfo]:
        """Every registered model."""
        return [ModelInfo.model_validate(m) for m in self._admin("list_models")]

    def model(self, name: str) -> ModelInfo:
        """One registered model with its versions."""
        return ModelInfo.model_validate(self._admin("show_model", name=name))

    def versions(self, name: str) -> list[VersionInfo]:
        """The versions of ``name``, newest first."""
        return self.model(name).versions

    # -- serving (the long actions are in lifecycle.py) -------------------------
    def status(self) -> list[ModelStatus]:
        """One row per deployed model."""
        return [ModelStatus.model_validate(r) for r in self._admin("status")]

    def cluster(self) -> list[NodeResources]:
        """The Ray cluster's nodes: CPU, GPU (logical, used of total) and host memory."""
        return [NodeResources.model_validate(n) for n in self._admin("cluster")]

    def operations(self) -> list[Operation]:
        """The platform's newest management operations, newest first."""
        return [Operation.model_validate(o) for o in self._admin("operations")]

    def operation(self, op_id: str) -> Operation:
        """One operation (a deploy, canary, ... started with ``wait=False``)."""
        return self._http.operation(op_id)

    def wait(self, op: Operation, progress: Callable[[str], None] | None = None) -> Any:
        """Wait for an operation; its result, or its error raised as a RemoteError."""
        return self._http.wait(op, progress)

    def history(self, name: str) -> list[HistoryEvent]:
        """Every alias move and deploy action of ``name``, oldest first."""
        return [HistoryEvent.model_validate(e) for e in self._admin("history", name=name)]

    def traffic(self, name: str) -> TrafficReport:
        """Live traffic of a deployed model: answers per version, shadow agreement."""
        return TrafficReport.model_validate(self._send("GET", url("traffic", name=name))[0])

    # -- keys and audit (scope admin) --------------------------------------------
    def create_key(
        self,
        scopes: list[str],
        name: str | None = None,
        expires_in_days: float | None = None,
    ) -> IssuedKey:
        """A new API key: its record plus ``key``, the secret, returned only this once."""
        body = {"scopes": scopes, "name": name, "expires_in_days": expires_in_days}
        answer = self._admin("create_key", {k: v for k, v in body.items() if v is not None})
        return IssuedKey.model_validate(answer)

    def keys(self) -> list[KeyRecord]:
        """Every API key (no secrets), revoked ones too."""
        return [KeyRecord.model_validate(k) for k in self._admin("list_keys")]

    def revoke_key(self, key_id: str) -> KeyRecord:
        """Revoke a key; every replica refuses it within ``auth_refresh_s`` (1 s)."""
        return KeyRecord.model_validate(self._admin("revoke_key", key_id=key_id))

    def audit(
        self, model: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest audit records (oldest first), by model and action."""
        params: dict[str, Any] = {"limit": limit}
        if model:
            params["model"] = model
        if action:
            params["action"] = action
        return [AuditRecord.model_validate(r) for r in self._admin("audit", params=params)]

    def predict(
        self,
        name: str,
        inputs: Any = None,
        *,
        payload: dict[str, Any] | None = None,
        version: str | int | None = None,
        request_id: str | None = None,
    ) -> list[Any]:
        """Predict over HTTP; ``inputs`` become ``{"inputs": ...}`` unless ``payload`` is given.

        ``request_id`` names the request (``x-request-id``) so ``feedback`` can label
        it later; ``predict_raw`` also returns the id the platform gave.
        """
        body = payload if payload is not None else wrap_inputs(inputs)
        if self._handles is not None:  # in the cluster: no JSON round trip
            pinned = None if version is None else str(version)
            return list(self._handles.predict(name, body, pinned, request_id)["predictions"])
        return self.predict_raw(
            name,
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            "application/json",
            version,
            request_id=request_id,
        )["predictions"]

    def predict_raw(
        self,
        name: str,
        body: bytes,
        content_type: str,
        version: str | int | None = None,
        *,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """POST a ready body to the predict route; the JSON answer plus ``version`` (that
        answered) and ``request_id`` (the answer's ``x-request-id``). In the cluster a
        JSON body goes over Serve handles (CSV still over HTTP)."""
        if self._handles is not None and content_type.split(";")[0].strip() == JSON:
            pinned = None if version is None else str(version)
            return self._handles.predict(name, orjson.loads(body), pinned, request_id)
        path, headers = predict_call(name, content_type, version, request_id)
        data, resp = self._send("POST", path, content=body, headers=headers, idempotent=True)
        data["version"] = resp.headers.get(VERSION_HEADER)
        data["request_id"] = resp.headers.get(REQUEST_ID_HEADER)
        return data

    def explain(
        self,
        name: str,
        inputs: Any = None,
        *,
        payload: dict[str, Any] | None = None,
        version: str | int | None = None,
        png: bool = False,
    ) -> Explanations:
        """Explain the predictions of ``inputs`` (as ``predict`` takes them): per row, the
        prediction and each feature's (or token's) contribution, largest first. With
        ``png`` (image models only), each row's saliency map also comes as a PNG heat map
        (``row.png()`` gives its bytes)."""
        body = payload if payload is not None else wrap_inputs(inputs)
        path, headers, params = explain_call(name, version, png)
        data, _ = self._send(
            "POST",
            path,
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            headers=headers,
            params=params,
            idempotent=True,
        )
        return Explanations.model_validate(data)

    # -- monitoring --------------------------------------------------------------------
    def feedback(self, name: str, labels: dict[str, Any] | list[dict[str, Any]]) -> FeedbackAnswer:
        """Send ground truth: ``{"request_id": ..., "label": ...}`` or a list of them."""
        data, _ = self._send(
            "POST",
            url("feedback", name=name),
            content=orjson.dumps(labels),
            headers={"content-type": JSON},
            idempotent=True,  # the last label per request id wins
        )
        return FeedbackAnswer.model_validate(data)

    def monitoring(
        self, name: str, window_s: float | None = None, buckets: int = 0
    ) -> MonitoringReport:
        """Per version and arm: requests, errors, latency, and quality from the labels;
        ``buckets`` > 0 adds the window as that many points (``series``)."""
        params: dict[str, Any] = {} if window_s is None else {"window_s": window_s}
        if buckets:
            params["buckets"] = buckets
        data, _ = self._send("GET", url("monitoring", name=name), params=params)
        return MonitoringReport.model_validate(data)

    def _admin(self, route: str, body: Any = None, *args: Any, **kwargs: Any) -> Any:
        return self._http.admin(route, body, *args, **kwargs)

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[dict[str, Any], httpx.Response]:
        return self._http.send(method, path, **kwargs)

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def handles_for(in_cluster: bool | None) -> Handles | None:
    """Serve handles to predict with (``in_cluster``; None: when in a Ray task or actor),
    else None: HTTP."""
    from maas_ray.in_cluster import Handles, in_ray_worker

    if in_cluster is None:
        in_cluster = in_ray_worker()
    return Handles() if in_cluster else None


def predict_call(
    name: str, content_type: str, version: str | int | None, request_id: str | None
) -> tuple[str, dict[str, str]]:
    """The path and headers of a predict (``MaaS`` and ``AsyncMaaS``)."""
    path = (
        url("predict", name=name)
        if version is None
        else url("predict_version", name=name, version=version)
    )
    headers = {"content-type": content_type}
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return path, headers


def explain_call(
    name: str, version: str | int | None, png: bool = False
) -> tuple[str, dict[str, str], dict[str, str]]:
    """The path, headers and query of an explain (``MaaS`` and ``AsyncMaaS``)."""
    path = (
        url("explain", name=name)
        if version is None
        else url("explain_version", name=name, version=version)
    )
    return path, {"content-type": JSON}, ({"format": "png"} if png else {})


def wrap_inputs(inputs: Any) -> dict[str, Any]:
    """``{"inputs": x}`` unless ``x`` already is a scoring-format payload; a pandas
    DataFrame goes as ``dataframe_split`` (its column names kept), a Series as a list."""
    if isinstance(inputs, dict) and any(k in inputs for k in FORMATS):
        return inputs
    kind = type(inputs).__name__
    if kind == "DataFrame" and hasattr(inputs, "to_dict"):
        return {"dataframe_split": inputs.to_dict(orient="split", index=False)}
    if kind == "Series" and hasattr(inputs, "tolist"):
        return {"inputs": inputs.tolist()}
    return {"inputs": inputs}
