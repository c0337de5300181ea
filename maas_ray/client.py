"""The Python SDK: ``from maas_ray import MaaS``.

A thin layer: registration and deployment go through the registry and the
control plane, predictions through the real HTTP ingress.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson

from maas_ray.control import ControlPlane, DeploymentSpec, ModelStatus
from maas_ray.control.deployer import PRODUCTION
from maas_ray.control.spec import DeploymentFile
from maas_ray.errors import InvalidJSON, PlatformUnavailable, RemoteError
from maas_ray.registry import HistoryEvent, ModelInfo, Registry, VersionInfo
from maas_ray.serving.protocol import FORMATS
from maas_ray.serving.traffic import Canary, Shadow
from maas_ray.settings import Settings


class MaaS:
    """Register, deploy and query models on a maas_ray platform.

    Args:
        settings: Platform settings; by default read from ``MAAS_*`` variables.
        **overrides: Individual settings, e.g. ``serve_port=8001``.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        self._registry: Registry | None = None
        self._http = httpx.Client(timeout=self.settings.request_timeout_s)

    @property
    def registry(self) -> Registry:
        """The MLflow registry of this platform (checked to answer on first use)."""
        if self._registry is None:
            registry = Registry(self.settings.mlflow_uri)
            registry.check()
            self._registry = registry
        return self._registry

    @property
    def control(self) -> ControlPlane:
        """The control plane that turns specs into Serve applications."""
        return ControlPlane(self.settings, self.registry)

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

        Returns:
            The new version, with its signature and SHA-256 digest.
        """
        return self.registry.register(
            name,
            model,
            input_example=input_example,
            signature=signature,
            artifacts=artifacts,
            description=description,
            tags=tags,
        )

    def register_uri(
        self,
        name: str,
        model_uri: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> VersionInfo:
        """Register an existing MLflow model (``runs:/``, ``models:/`` or a local folder)."""
        return self.registry.register_uri(name, model_uri, description=description, tags=tags)

    def models(self) -> list[ModelInfo]:
        """Every registered model."""
        return self.registry.list_models()

    def model(self, name: str) -> ModelInfo:
        """One registered model with its versions."""
        return self.registry.get_model(name)

    def versions(self, name: str) -> list[VersionInfo]:
        """The versions of ``name``, newest first."""
        return self.registry.get_model(name).versions

    # -- serving ---------------------------------------------------------------
    def deploy(
        self,
        name: str,
        version: str | int | None = None,
        *,
        alias: str | None = None,
        progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> ModelStatus:
        """Serve a version of ``name`` and wait until it answers.

        ``options`` are DeploymentSpec fields: ``num_replicas``, ``min_replicas``,
        ``max_replicas``, ``num_cpus``, ``num_gpus``, ``max_ongoing_requests``.
        """
        spec = DeploymentSpec(
            model=name, version=None if version is None else str(version), alias=alias, **options
        )
        return self.control.deploy(spec, progress)

    def undeploy(self, name: str, progress: Callable[[str], None] | None = None) -> None:
        """Stop serving ``name`` (its versions stay registered)."""
        self.control.undeploy(name, progress)

    def status(self) -> list[ModelStatus]:
        """One row per deployed model."""
        return self.control.status()

    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = PRODUCTION,
        progress: Callable[[str], None] | None = None,
    ) -> ModelStatus | None:
        """Point ``alias`` at ``version``; the deployment following it switches, no request lost."""
        return self.control.promote(name, str(version), alias, progress)

    def rollback(
        self, name: str, alias: str = PRODUCTION, progress: Callable[[str], None] | None = None
    ) -> ModelStatus | None:
        """End a canary/shadow, or move ``alias`` back to the version it had before."""
        return self.control.rollback(name, alias, progress)

    def canary(
        self,
        name: str,
        version: str | int,
        percent: float,
        *,
        sticky_header: str | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> ModelStatus:
        """Send ``percent`` of ``name``'s traffic to ``version``."""
        side = Canary(version=str(version), percent=percent, sticky_header=sticky_header)
        return self.control.start_challenger(name, side, progress)

    def shadow(
        self,
        name: str,
        version: str | int,
        percent: float = 100,
        progress: Callable[[str], None] | None = None,
    ) -> ModelStatus:
        """Mirror ``percent`` of ``name``'s traffic to ``version`` (callers see the primary)."""
        side = Shadow(version=str(version), percent=percent)
        return self.control.start_challenger(name, side, progress)

    def apply(
        self, document: dict[str, Any], progress: Callable[[str], None] | None = None
    ) -> dict[str, str]:
        """Apply a ``maas apply`` document (``kind: MaasDeployments``); see DeploymentFile."""
        parsed = DeploymentFile.model_validate(document)
        return self.control.apply_specs(parsed.models, progress)

    def history(self, name: str) -> list[HistoryEvent]:
        """Every alias move and deploy action of ``name``, oldest first."""
        return self.registry.history(name)

    def traffic(self, name: str) -> dict[str, Any]:
        """Live traffic of a deployed model: answers per version, shadow agreement."""
        return self._send("GET", f"/v1/models/{name}/traffic")[0]

    def predict(
        self,
        name: str,
        inputs: Any = None,
        *,
        payload: dict[str, Any] | None = None,
        version: str | int | None = None,
    ) -> list[Any]:
        """Predict over HTTP; ``inputs`` become ``{"inputs": ...}`` unless ``payload`` is given."""
        body = payload if payload is not None else wrap_inputs(inputs)
        return self.predict_raw(
            name, orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY), "application/json", version
        )["predictions"]

    def predict_raw(
        self, name: str, body: bytes, content_type: str, version: str | int | None = None
    ) -> dict[str, Any]:
        """POST a ready body to the model's predict route and return the JSON answer."""
        path = f"/v1/models/{name}"
        if version is not None:
            path += f"/versions/{version}"
        data, resp = self._send(
            "POST", f"{path}/predict", content=body, headers={"content-type": content_type}
        )
        data["version"] = resp.headers.get("x-maas-model-version")
        return data

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[dict[str, Any], httpx.Response]:
        """One HTTP call to Serve; errors become PlatformUnavailable or RemoteError."""
        try:
            resp = self._http.request(method, f"{self.settings.serve_url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(
                f"Serve at {self.settings.serve_url} does not answer ({exc.__class__.__name__})"
            ) from exc
        data = _json(resp)
        if resp.status_code >= 400:
            raise RemoteError(
                str(data.get("error", resp.text)),
                status_code=resp.status_code,
                remote_code=str(data.get("code", "unknown")),
            )
        return data, resp

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def wrap_inputs(inputs: Any) -> dict[str, Any]:
    """``{"inputs": x}`` unless ``x`` already is a scoring-format payload."""
    if isinstance(inputs, dict) and any(k in inputs for k in FORMATS):
        return inputs
    return {"inputs": inputs}


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError as exc:
        raise InvalidJSON(
            f"platform answered non-JSON ({resp.status_code}): {resp.text[:300]}"
        ) from exc
    return data if isinstance(data, dict) else {"predictions": data}
