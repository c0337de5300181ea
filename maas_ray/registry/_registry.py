"""The MLflow Model Registry as maas_ray sees it.

Everything durable lives here: versions with their digest and signature (version
tags) and each model's deployment spec (a registered-model tag). Ray Serve only
ever holds state derived from this.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mlflow
from mlflow.entities.model_registry import RegisteredModel
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.tracking import MlflowClient

from maas_ray.errors import (
    BadRequest,
    DigestMismatch,
    InvalidInput,
    ModelNotFound,
)
from maas_ray.registry._convert import TAG_SHA256, TAG_SIGNATURE, _model_info, _version_info
from maas_ray.registry._logging import log_model
from maas_ray.registry._names import _quote, _validate_alias, _validate_name
from maas_ray.registry._reach import Reach, answer_fast
from maas_ray.registry._state import _ModelState
from maas_ray.registry.background import FILE as BACKGROUND_FILE
from maas_ray.registry.background import dump_background
from maas_ray.registry.digest import artifact_digest
from maas_ray.registry.models import ModelInfo, VersionInfo

logger = logging.getLogger(__name__)

EXPERIMENT = "maas-registrations"
_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
# MLflow refuses names with '/' or ':' and non-numeric versions with this code: such a
# model or version cannot exist, so a lookup answers "not found", not an error.
_MISSING = (_NOT_FOUND, "INVALID_PARAMETER_VALUE")


class Registry(_ModelState):
    """Registered models, versions, digests and deployment specs over ``MlflowClient``."""

    def __init__(self, tracking_uri: str, *, answering: bool = False) -> None:
        """``answering``: this process answers people (the gateway, the management API),
        so MLflow's client gives up on a down server in well under a second, process-wide
        (``_reach.answer_fast``), instead of retrying with backoff for 12 s."""
        self.uri = tracking_uri
        if answering:
            answer_fast()
        # Download bars of MLflow would interleave with our own progress display.
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        # Every call fails fast with RegistryUnavailable while the server is down (_reach.py).
        self.reach = Reach(tracking_uri)
        self.client: MlflowClient = self.reach.wrap(
            MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        )

    # -- health ------------------------------------------------------------
    def check(self, timeout_s: float = 5.0) -> None:
        """Fail fast with RegistryUnavailable when the MLflow server does not answer."""
        if not self.uri.startswith("http"):
            return
        try:
            httpx.get(f"{self.uri}/health", timeout=timeout_s).raise_for_status()
        except httpx.HTTPError as exc:
            self.reach.mark_down()
            raise self.reach.error() from exc

    # -- registration --------------------------------------------------------
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
        """Log ``model`` with MLflow and register it as a new version of ``name``
        (``background``: rows like its input, kept for explanations)."""
        started = time.perf_counter()
        uri = self.log(
            name,
            model,
            input_example=input_example,
            signature=signature,
            artifacts=artifacts,
            background=background,
        )
        result = self.register_uri(name, uri, description=description, tags=tags)
        logger.info(
            "registered %s version %s in %.2fs", name, result.version, time.perf_counter() - started
        )
        return result

    def log(
        self,
        name: str,
        model: Any,
        *,
        input_example: Any = None,
        signature: Any = None,
        artifacts: dict[str, str] | None = None,
        background: Any = None,
    ) -> str:
        """Log ``model`` with MLflow (not registered yet); returns its model URI.

        The client half of registration over the management API: the platform then
        registers the URI, records its digest and audits who asked. ``background``
        (rows like the model's input: a DataFrame, an array, a list of texts) goes
        into the model's own folder as ``maas_background.json``, so the digest covers
        it; explanations compare against it.
        """
        _validate_name(name)
        self._use()
        stored = None
        if background is not None:
            try:
                stored = dump_background(background)
            except ValueError as exc:
                raise BadRequest(str(exc)) from exc
        with self.reach.guard(), _quiet(), mlflow.start_run(run_name=f"register-{name}"):
            info = log_model(
                model,
                registered_model_name=None,
                input_example=input_example,
                signature=signature,
                artifacts=artifacts,
            )
            if stored is not None:
                with tempfile.TemporaryDirectory(prefix="maas-background-") as tmp:
                    path = Path(tmp) / BACKGROUND_FILE
                    path.write_bytes(stored)
                    self.client.log_model_artifact(info.model_id, str(path))
        return str(info.model_uri)

    def upload(self, name: str, folder: str | Path) -> str:
        """Upload a local MLflow model folder as a run's artifacts; returns its runs:/ URI."""
        _validate_name(name)
        self._use()
        local = Path(folder).expanduser()
        if not (local / "MLmodel").is_file():
            raise BadRequest(f"got '{folder}' for --model-uri: no MLmodel file there")
        with (
            self.reach.guard(),
            _quiet(),
            mlflow.start_run(run_name=f"register-{name}") as run,
        ):
            mlflow.log_artifacts(str(local), artifact_path="model")
        return f"runs:/{run.info.run_id}/model"

    def register_uri(
        self,
        name: str,
        model_uri: str,
        *,
        description: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> VersionInfo:
        """Register an existing MLflow model (``runs:/``, ``models:/`` or a local folder)."""
        _validate_name(name)
        self._use()
        if "://" not in model_uri and ":/" not in model_uri:
            model_uri = self.upload(name, model_uri)
        self._check_source(model_uri)
        existed = self._exists(name)
        try:
            with self.reach.guard(), _quiet():
                mv = mlflow.register_model(model_uri, name)
        except MlflowException as exc:  # an answer of the server's (the guard took the rest)
            if not existed and self._exists(name):
                self.client.delete_registered_model(name)  # leave no empty model behind
            raise BadRequest(f"cannot register '{model_uri}': {exc.message}") from exc
        return self._finish(name, str(mv.version), description, tags)

    def _finish(
        self, name: str, version: str, description: str | None, tags: dict[str, str] | None
    ) -> VersionInfo:
        with tempfile.TemporaryDirectory(prefix="maas-reg-") as tmp:
            local = self._download(name, version, tmp)
            digest = artifact_digest(local)
            sig = Model.load(local).signature
        self.client.set_model_version_tag(name, version, TAG_SHA256, digest)
        if sig is not None:
            self.client.set_model_version_tag(
                name, version, TAG_SIGNATURE, json.dumps(sig.to_dict())
            )
        for key, value in (tags or {}).items():
            self.client.set_model_version_tag(name, version, key, str(value))
        if description:
            self.client.update_model_version(name, version, description=description)
        return self.get_version(name, version)

    # -- reading ----------------------------------------------------------------
    def get_model(self, name: str) -> ModelInfo:
        """A registered model with every version, newest first."""
        rm = self._registered(name)
        versions = self.client.search_model_versions(f"name='{_quote(name)}'")
        infos = sorted((_version_info(v) for v in versions), key=lambda v: -int(v.version))
        return _model_info(
            rm, [self._with_metrics(v) if i < 20 else v for i, v in enumerate(infos)]
        )

    def _with_metrics(self, info: VersionInfo) -> VersionInfo:
        """``info`` with its run's metrics (training scores), if the run is there."""
        if not info.run_id:
            return info
        try:
            metrics = self.client.get_run(info.run_id).data.metrics
        except MlflowException:  # the run was deleted: the version stays readable
            return info
        return info.model_copy(update={"metrics": dict(metrics)})

    def list_models(self) -> list[ModelInfo]:
        """Every registered model (versions not filled in)."""
        models = self.client.search_registered_models(max_results=1000)
        return sorted((_model_info(rm, []) for rm in models), key=lambda m: m.name)

    def get_version(self, name: str, version: str) -> VersionInfo:
        """One version; ModelNotFound when the model or the version does not exist."""
        try:
            mv = self.client.get_model_version(name, str(version))
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                self._registered(name)
                raise ModelNotFound(name, str(version)) from exc
            raise
        return _version_info(mv)

    def resolve(
        self, name: str, version: str | None = None, alias: str | None = None
    ) -> VersionInfo:
        """The version named by ``version``, by ``alias``, or else the latest one."""
        if version is not None:
            return self.get_version(name, version)
        if alias is not None:
            _validate_alias(alias)
            try:
                return _version_info(self.client.get_model_version_by_alias(name, alias))
            except MlflowException as exc:
                if exc.error_code in _MISSING:
                    self._registered(name)
                    raise ModelNotFound(name, f"@{alias}") from exc
                raise
        latest = self.get_model(name).latest_version
        if latest is None:
            raise ModelNotFound(name)
        return self.get_version(name, latest)

    # -- loading -----------------------------------------------------------------
    def download_verified(self, name: str, version: str, dst: str | Path) -> Path:
        """Download a version's artifacts and check them against the recorded digest."""
        return self.download_checked(name, version, dst)[0]

    def download_checked(self, name: str, version: str, dst: str | Path) -> tuple[Path, str]:
        """``download_verified``, and the digest the artifacts were checked against."""
        info = self.get_version(name, version)
        if not info.sha256:
            raise DigestMismatch(
                f"version {version} of '{name}' has no recorded digest; register it with maas"
            )
        local = self._download(name, version, dst)
        actual = artifact_digest(local)
        if actual != info.sha256:
            raise DigestMismatch(
                f"artifacts of '{name}' version {version} were changed after registration: "
                f"sha256 {actual[:12]}... != recorded {info.sha256[:12]}..."
            )
        return local, actual

    def _download(self, name: str, version: str, dst: str | Path) -> Path:
        # Not "models:/..." here: MLflow resolves that against the process-wide
        # registry URI, which inside a Serve replica is not ours.
        source = self.client.get_model_version_download_uri(name, str(version))
        with self.reach.guard():
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=source, dst_path=str(dst), tracking_uri=self.uri
            )
        return Path(path)

    # -- helpers --------------------------------------------------------------
    def _registered(self, name: str) -> RegisteredModel:
        try:
            return self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                raise ModelNotFound(name) from exc
            raise

    def _exists(self, name: str) -> bool:
        try:
            self._registered(name)
        except ModelNotFound:
            return False
        return True

    def _check_source(self, uri: str) -> None:
        """InvalidInput unless a runs:/ or models:/ URI names something that exists.

        Asked first because MLflow's register call retries a missing source for minutes.
        """
        ref = uri.split(":/", 1)[1].lstrip("/") if ":/" in uri else ""
        try:
            if uri.startswith("runs:/"):
                self.client.get_run(ref.split("/", 1)[0])
            elif uri.startswith("models:/") and ref.startswith("m-"):
                self.client.get_logged_model(ref.split("/", 1)[0])
            elif uri.startswith("models:/") and "@" in ref:
                model, alias = ref.split("@", 1)
                self.client.get_model_version_by_alias(model, alias)
            elif uri.startswith("models:/"):
                model, _, version = ref.partition("/")
                self.client.get_model_version(model, version)
        except MlflowException as exc:
            raise InvalidInput(
                f"model_uri: '{uri[:200]}' names nothing in MLflow: {exc.message[:200]}"
            ) from exc

    def _use(self) -> None:
        # The fluent log_model API reads process-wide URIs; point them at this registry.
        mlflow.set_tracking_uri(self.uri)
        mlflow.set_registry_uri(self.uri)
        with self.reach.guard(), _quiet():
            mlflow.set_experiment(EXPERIMENT)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Keep MLflow's chatter ("Successfully registered model ...", INFO logs) out of
    the user's terminal; it goes to our debug log instead."""
    mlflow_logger = logging.getLogger("mlflow")
    level = mlflow_logger.level
    mlflow_logger.setLevel(max(level, logging.WARNING))
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stderr(buffer):
            yield
    finally:
        mlflow_logger.setLevel(level)
        if buffer.getvalue().strip():
            logger.debug("mlflow: %s", buffer.getvalue().strip())
