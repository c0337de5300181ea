"""Desired state (specs in the registry) -> running state (Serve applications)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

from maas_ray.control.serve_api import ServeAPI
from maas_ray.control.spec import DeploymentSpec, model_route, serve_config
from maas_ray.errors import DeploymentFailed, MaasError, VersionNotDeployed
from maas_ray.registry import Registry
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
_FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}


class ModelStatus(BaseModel):
    """One row of ``maas status``."""

    model: str
    version: str | None
    alias: str | None
    replicas_running: int
    replicas_target: int
    replicas_spec: str
    num_cpus: float
    num_gpus: float
    health: str
    route: str
    message: str = ""


class ControlPlane:
    """Turns the registry's deployment specs into Serve applications and reports on them."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry(settings.mlflow_uri)
        self.serve = ServeAPI(settings.dashboard_url, timeout_s=settings.request_timeout_s)

    # -- desired state --------------------------------------------------------
    def desired_config(self) -> dict[str, Any]:
        """The full Serve config derived from every stored spec."""
        apps = []
        for name, raw in sorted(self.registry.list_specs().items()):
            try:
                spec = DeploymentSpec.model_validate(raw)
                version = self.registry.resolve(name, spec.version, spec.alias).version
            except (MaasError, ValueError) as exc:
                logger.warning("skipping deployment of %s: %s", name, exc)
                continue
            apps.append(spec.to_application(version, self.settings.mlflow_uri))
        s = self.settings
        return serve_config(apps, s.host, s.serve_port, s.mlflow_uri)

    def apply(self) -> dict[str, str]:
        """PUT the desired config; return the version each model should reach."""
        config = self.desired_config()
        self.serve.put_config(config)
        return {app["name"]: app["args"]["version"] for app in config["applications"][1:]}

    # -- actions -------------------------------------------------------------------
    def deploy(self, spec: DeploymentSpec, progress: Progress | None = None) -> ModelStatus:
        """Store ``spec`` and wait until its version answers; undo the change on failure."""
        target = self.registry.resolve(spec.model, spec.version, spec.alias)
        if spec.alias is None:
            spec = spec.model_copy(update={"version": target.version})
        previous = self.registry.get_spec(spec.model)
        self.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
        try:
            self.apply()
            self.wait_running({spec.model: target.version}, progress)
        except DeploymentFailed:
            # Put back what served before so a bad version never takes the traffic.
            if previous is None:
                self.registry.delete_spec(spec.model)
            else:
                self.registry.set_spec(spec.model, previous)
            self.apply()
            raise
        return self.status_of(spec.model)

    def undeploy(self, name: str, progress: Progress | None = None) -> None:
        """Stop serving ``name``; its versions stay registered."""
        if self.registry.get_spec(name) is None:
            raise VersionNotDeployed(name)
        self.registry.delete_spec(name)
        self.apply()
        deadline = time.monotonic() + self.settings.deploy_timeout_s
        while name in self.serve.applications():
            if time.monotonic() > deadline:
                raise DeploymentFailed(f"'{name}' still running after undeploy")
            if progress:
                progress(f"stopping {name}")
            time.sleep(0.5)

    def wait_running(self, targets: dict[str, str], progress: Progress | None = None) -> None:
        """Poll Serve until every app in ``targets`` runs its target version."""
        deadline = time.monotonic() + self.settings.deploy_timeout_s
        pending = dict(targets)
        while pending:
            apps = self.serve.applications()
            for name, version in list(pending.items()):
                app = apps.get(name) or {}
                state, running_version = app.get("status"), _app_version(app)
                if state == "RUNNING" and running_version == version:
                    del pending[name]
                elif state in _FAILED and running_version == version:
                    raise DeploymentFailed(f"'{name}' version {version} failed: {_app_error(app)}")
                elif progress:
                    progress(f"{name} v{version}: {state or 'NOT_STARTED'}")
            if pending and time.monotonic() > deadline:
                raise DeploymentFailed(
                    f"timed out after {self.settings.deploy_timeout_s:.0f}s waiting for "
                    + ", ".join(f"{n} v{v}" for n, v in pending.items())
                )
            if pending:
                time.sleep(0.5)

    # -- status ------------------------------------------------------------------------
    def status(self) -> list[ModelStatus]:
        """One row per model that has a deployment spec."""
        specs = self.registry.list_specs()
        apps = self.serve.applications()
        return [
            _row(DeploymentSpec.model_validate(raw), apps.get(n))
            for n, raw in sorted(specs.items())
        ]

    def status_of(self, name: str) -> ModelStatus:
        """The status row of one deployed model."""
        raw = self.registry.get_spec(name)
        if raw is None:
            raise VersionNotDeployed(name)
        return _row(DeploymentSpec.model_validate(raw), self.serve.applications().get(name))


def _app_version(app: dict[str, Any]) -> str | None:
    args = (app.get("deployed_app_config") or {}).get("args") or {}
    version = args.get("version")
    return None if version is None else str(version)


def _app_error(app: dict[str, Any]) -> str:
    messages = [app.get("message") or ""]
    for dep in (app.get("deployments") or {}).values():
        if dep.get("message"):
            messages.append(dep["message"])
    return "\n".join(m for m in messages if m).strip() or "no message from Serve"


def _row(spec: DeploymentSpec, app: dict[str, Any] | None) -> ModelStatus:
    app = app or {}
    deployments = app.get("deployments") or {}
    dep: dict[str, Any] = next(iter(deployments.values()), {})
    replicas = dep.get("replicas") or []
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    target = dep.get("target_num_replicas")
    if target is None:
        target = spec.min_replicas if spec.autoscaling else (spec.num_replicas or 1)
    state = app.get("status") or "NOT_RUNNING"
    return ModelStatus(
        model=spec.model,
        version=_app_version(app),
        alias=spec.alias,
        replicas_running=running,
        replicas_target=int(target or 0),
        replicas_spec=spec.replicas_text(),
        num_cpus=spec.num_cpus,
        num_gpus=spec.num_gpus,
        health=state,
        route=f"{model_route(spec.model)}/predict",
        message=_app_error(app) if state in _FAILED else "",
    )
