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

from maas_ray.control.status import ModelStatus, NodeResources
from maas_ray.errors import InvalidJSON, PlatformUnavailable, RemoteError
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.routes import BY_NAME, url
from maas_ray.security.keys import client_key
from maas_ray.settings import Settings
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, Shadow
from maas_ray.wire import ACTOR_HEADER, FORMATS, JSON, PRODUCTION, VERSION_HEADER

if TYPE_CHECKING:
    from maas_ray.control.deployer import ControlPlane
    from maas_ray.registry import Registry

# A management call may wait for replicas to start: the deploy timeout plus slack.
_SLACK_S = 60.0


class MaaS:
    """Register, deploy and query models on a maas_ray platform.

    Args:
        settings: Platform settings; by default read from ``MAAS_*`` variables.
        **overrides: Individual settings, e.g. ``serve_port=8001``.
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or Settings(**overrides)
        self._registry: Registry | None = None
        secret = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        headers = {ACTOR_HEADER: self.settings.who}
        key = client_key(secret, self.settings.admin_key_file)
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        self._http = httpx.Client(timeout=self.settings.request_timeout_s, headers=headers)

    @property
    def registry(self) -> Registry:
        """Direct access to the MLflow registry (checked to answer on first use).

        For code next to the platform (jobs, tests); the SDK's own verbs go
        through the authenticated HTTP API instead.
        """
        if self._registry is None:
            from maas_ray.registry import Registry

            registry = Registry(self.settings.mlflow_uri)
            registry.check()
            self._registry = registry
        return self._registry

    @property
    def control(self) -> ControlPlane:
        """Direct access to the control plane (see ``registry``)."""
        from maas_ray.control.deployer import ControlPlane

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
        uri = self.registry.log(
            name, model, input_example=input_example, signature=signature, artifacts=artifacts
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
            model_uri = self.registry.upload(name, model_uri)
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

    # -- serving ---------------------------------------------------------------
    def deploy(
        self,
        name: str,
        version: str | int | None = None,
        *,
        alias: str | None = None,
        progress: Callable[[str], None] | None = None,
        timeout_s: int | None = None,
        **options: Any,
    ) -> ModelStatus:
        """Serve a version of ``name`` and wait until it answers.

        ``options`` are DeploymentSpec fields: ``num_replicas``, ``min_replicas``,
        ``max_replicas``, ``num_cpus``, ``num_gpus``, ``max_ongoing_requests``.
        ``timeout_s``: give up after this long (at most the platform's deploy
        timeout) and put back what ran before.
        """
        spec = DeploymentSpec(
            model=name, version=None if version is None else str(version), alias=alias, **options
        )
        body = spec.model_dump(exclude_none=True, exclude={"model"})
        params = None if timeout_s is None else {"timeout_s": timeout_s}
        answer = self._admin("deploy", body, progress, params, name=name)
        return ModelStatus.model_validate(answer)

    def undeploy(self, name: str, progress: Callable[[str], None] | None = None) -> None:
        """Stop serving ``name`` (its versions stay registered)."""
        self._admin("undeploy", None, progress, name=name)

    def status(self) -> list[ModelStatus]:
        """One row per deployed model."""
        return [ModelStatus.model_validate(r) for r in self._admin("status")]

    def cluster(self) -> list[NodeResources]:
        """The Ray cluster's nodes: CPU, GPU (logical, used of total) and host memory."""
        return [NodeResources.model_validate(n) for n in self._admin("cluster")]

    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = PRODUCTION,
        progress: Callable[[str], None] | None = None,
    ) -> ModelStatus | None:
        """Point ``alias`` at ``version``; the deployment following it switches, no request lost."""
        body = {"version": str(version), "alias": alias}
        answer = self._admin("promote", body, progress, name=name)
        return _row(answer)

    def rollback(
        self, name: str, alias: str = PRODUCTION, progress: Callable[[str], None] | None = None
    ) -> ModelStatus | None:
        """End a canary/shadow, or move ``alias`` back to the version it had before."""
        answer = self._admin("rollback", {"alias": alias}, progress, name=name)
        return _row(answer)

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
        body = side.model_dump(exclude_none=True)
        return ModelStatus.model_validate(self._admin("canary", body, progress, name=name))

    def shadow(
        self,
        name: str,
        version: str | int,
        percent: float = 100,
        progress: Callable[[str], None] | None = None,
    ) -> ModelStatus:
        """Mirror ``percent`` of ``name``'s traffic to ``version`` (callers see the primary)."""
        body = Shadow(version=str(version), percent=percent).model_dump()
        return ModelStatus.model_validate(self._admin("shadow", body, progress, name=name))

    def apply(
        self, document: dict[str, Any], progress: Callable[[str], None] | None = None
    ) -> dict[str, str]:
        """Apply a ``maas apply`` document (``kind: MaasDeployments``); see DeploymentFile."""
        parsed = DeploymentFile.model_validate(document)
        body = parsed.model_dump(exclude_none=True)
        answer: dict[str, str] = self._admin("apply", body, progress)
        return answer

    def history(self, name: str) -> list[HistoryEvent]:
        """Every alias move and deploy action of ``name``, oldest first."""
        return [HistoryEvent.model_validate(e) for e in self._admin("history", name=name)]

    def traffic(self, name: str) -> dict[str, Any]:
        """Live traffic of a deployed model: answers per version, shadow agreement."""
        return self._send("GET", url("traffic", name=name))[0]

    # -- keys and audit (scope admin) --------------------------------------------
    def create_key(
        self,
        scopes: list[str],
        name: str | None = None,
        expires_in_days: float | None = None,
    ) -> dict[str, Any]:
        """A new API key: its record plus ``key``, the secret, returned only this once."""
        body = {"scopes": scopes, "name": name, "expires_in_days": expires_in_days}
        answer: dict[str, Any] = self._admin(
            "create_key", {k: v for k, v in body.items() if v is not None}
        )
        return answer

    def keys(self) -> list[dict[str, Any]]:
        """Every API key (no secrets), revoked ones too."""
        answer: list[dict[str, Any]] = self._admin("list_keys")
        return answer

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        """Revoke a key; every replica refuses it within ``auth_refresh_s`` (1 s)."""
        answer: dict[str, Any] = self._admin("revoke_key", key_id=key_id)
        return answer

    def audit(
        self, model: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """The newest audit records (oldest first), by model and action."""
        params: dict[str, Any] = {"limit": limit}
        if model:
            params["model"] = model
        if action:
            params["action"] = action
        answer: list[dict[str, Any]] = self._admin("audit", params=params)
        return answer

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
        path = (
            url("predict", name=name)
            if version is None
            else url("predict_version", name=name, version=version)
        )
        data, resp = self._send("POST", path, content=body, headers={"content-type": content_type})
        data["version"] = resp.headers.get(VERSION_HEADER)
        return data

    def _admin(
        self,
        route: str,
        body: Any = None,
        progress: Callable[[str], None] | None = None,
        params: dict[str, Any] | None = None,
        **path: str,
    ) -> Any:
        """One management call, by route name; long ones (deploys) get the deploy timeout."""
        if progress is not None:
            progress("the platform is at it")
        kwargs: dict[str, Any] = {"params": params}
        if body is not None:
            kwargs["content"] = orjson.dumps(body)
            kwargs["headers"] = {"content-type": JSON}
        found = BY_NAME[route]
        if found.method != "GET":
            kwargs["timeout"] = self.settings.deploy_timeout_s + _SLACK_S
        resp = self._request(found.method, found.url(**path), **kwargs)
        return _decoded(resp)

    def _send(self, method: str, path: str, **kwargs: Any) -> tuple[dict[str, Any], httpx.Response]:
        """One HTTP call to Serve that answers a JSON object."""
        resp = self._request(method, path, **kwargs)
        data = _decoded(resp)
        return (data if isinstance(data, dict) else {"predictions": data}), resp

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP call; errors become PlatformUnavailable or RemoteError."""
        try:
            resp = self._http.request(method, f"{self.settings.serve_url}{path}", **kwargs)
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(
                f"the platform at {self.settings.serve_url} does not answer "
                f"({exc.__class__.__name__}); is it up? run `maas up`"
            ) from exc
        if resp.status_code >= 400:
            data = _decoded(resp, check=False)
            data = data if isinstance(data, dict) else {}
            message = str(data.get("error", resp.text))
            if resp.status_code == 401:
                message += (
                    f"; the CLI and SDK send MAAS_API_KEY, else {self.settings.admin_key_file}"
                )
            raise RemoteError(
                message,
                status_code=resp.status_code,
                remote_code=str(data.get("code", "unknown")),
            )
        return resp

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()


def wrap_inputs(inputs: Any) -> dict[str, Any]:
    """``{"inputs": x}`` unless ``x`` already is a scoring-format payload."""
    if isinstance(inputs, dict) and any(k in inputs for k in FORMATS):
        return inputs
    return {"inputs": inputs}


def _decoded(resp: httpx.Response, check: bool = True) -> Any:
    try:
        return orjson.loads(resp.content)
    except orjson.JSONDecodeError as exc:
        if not check:
            return {}
        raise InvalidJSON(
            f"platform answered non-JSON ({resp.status_code}): {resp.text[:300]}"
        ) from exc


def _row(answer: dict[str, Any]) -> ModelStatus | None:
    """The status row in a promote/rollback answer (None: the alias moved only)."""
    row = answer.get("status")
    return ModelStatus.model_validate(row) if row else None
