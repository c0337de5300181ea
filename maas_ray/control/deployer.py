"""Desired state (specs in the registry) -> running state (Serve applications)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from maas_ray.control.serve_api import ServeAPI
from maas_ray.control.spec import (
    CHALLENGER_DEPLOYMENT,
    MODEL_DEPLOYMENT,
    SHARED_APP,
    SHARED_DEPLOYMENT,
    DeploymentSpec,
    model_route,
    serve_config,
    shared_application,
)
from maas_ray.control.status import ModelStatus, VersionRole
from maas_ray.errors import BadRequest, Conflict, DeploymentFailed, MaasError, VersionNotDeployed
from maas_ray.registry import HistoryEvent, Registry
from maas_ray.serving.traffic import Canary, Shadow
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
_FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}
PRODUCTION = "production"
FAILED_ACTION = "deploy-failed"  # history action of a refused deploy, promote or apply


class ControlPlane:
    """Turns the registry's deployment specs into Serve applications and reports on them."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry(settings.mlflow_uri)
        self.serve = ServeAPI(settings.dashboard_url, timeout_s=settings.request_timeout_s)

    # -- desired state --------------------------------------------------------
    def apply(self) -> dict[str, str]:
        """PUT the desired config; return the version each model should reach.

        Shared models map to the version the pool will load for them.
        """
        config, targets = self.desired()
        self.serve.put_config(config)
        return targets

    def desired(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The full Serve config and ``{model: version}``, from one pass over the stored specs."""
        s = self.settings
        apps = []
        targets: dict[str, str] = {}
        shared = False
        for name, raw in sorted(self.registry.list_specs().items()):
            try:
                spec = DeploymentSpec.model_validate(raw)
                version = self.registry.resolve(name, spec.version, spec.alias).version
            except (MaasError, ValueError) as exc:
                logger.warning("skipping deployment of %s: %s", name, exc)
                continue
            targets[name] = version
            if spec.mode == "shared":
                shared = True  # served by the pool; the gateway finds it in the registry
            else:
                apps.append(spec.to_application(version, s.mlflow_uri))
        # The pool always runs, warm: it answers a dedicated model's first requests
        # while that model's own replicas start (see serving/gateway.py). With no
        # shared model it reserves no CPU, so it never keeps a model replica out.
        num_cpus = s.shared_num_cpus if shared else 0.0
        apps.append(shared_application(s.mlflow_uri, s.shared_replicas, num_cpus))
        return serve_config(apps, s.host, s.serve_port, s.mlflow_uri), targets

    # -- actions -------------------------------------------------------------------
    def deploy(self, spec: DeploymentSpec, progress: Progress | None = None) -> ModelStatus:
        """Store ``spec`` and wait until its version answers; undo the change on failure."""
        target = self.registry.resolve(spec.model, spec.version, spec.alias)
        if spec.alias is None:
            spec = spec.model_copy(update={"version": target.version})
        previous = self.registry.get_spec(spec.model)
        running = self._serving_version(spec.model)
        self._switch(spec, previous, progress)
        self.registry.record(
            spec.model,
            self.settings.who,
            "deploy",
            alias=spec.alias,
            from_version=running,
            to_version=target.version,
            detail=f"replicas {spec.replicas_text()}, {spec.num_cpus:g} CPU, "
            f"{spec.num_gpus:g} GPU per replica",
        )
        return self.status_of(spec.model)

    def promote(
        self,
        name: str,
        version: str,
        alias: str = PRODUCTION,
        progress: Progress | None = None,
    ) -> ModelStatus | None:
        """Point ``alias`` at ``version``; a deployment that follows the alias switches.

        A deployment pinned to a version follows ``production`` from now on. A
        canary or shadow of ``version`` ends: it is the primary now. Returns the
        new status, or None when the model is not deployed.
        """
        version = self.registry.get_version(name, str(version)).version
        raw = self.registry.get_spec(name)
        before = self.registry.set_alias(name, alias, version)
        try:
            spec = self._following(raw, alias)
            if spec is not None:
                update: dict[str, Any] = {"alias": alias, "version": None}
                if spec.challenger is not None and spec.challenger.version == version:
                    update.update(canary=None, shadow=None)
                self._switch(spec.model_copy(update=update), raw, progress)
        except MaasError:
            self._restore_alias(name, alias, before)
            raise
        self.registry.record(
            name, self.settings.who, "promote", alias=alias, from_version=before, to_version=version
        )
        return self.status_of(name) if raw is not None else None

    def rollback(
        self, name: str, alias: str = PRODUCTION, progress: Progress | None = None
    ) -> ModelStatus | None:
        """End a canary or shadow, or else move ``alias`` back one step in its history."""
        raw = self.registry.get_spec(name)
        spec = DeploymentSpec.model_validate(raw) if raw is not None else None
        if spec is not None and spec.challenger is not None:
            kind = "canary" if spec.canary is not None else "shadow"
            primary = self._serving_version(name)
            self._switch(spec.model_copy(update={"canary": None, "shadow": None}), raw, progress)
            self.registry.record(
                name,
                self.settings.who,
                f"{kind}-end",
                from_version=spec.challenger.version,
                to_version=primary,
                detail=f"{kind} of version {spec.challenger.version} ended by rollback",
            )
            return self.status_of(name)
        target = rollback_target(self.registry.history(name), alias)
        if target is None:
            raise Conflict(
                f"'{name}' has no earlier version of @{alias} to roll back to (see `maas history`)"
            )
        before = self.registry.set_alias(name, alias, target)
        try:
            following = self._following(raw, alias)
            if following is not None:
                self._switch(
                    following.model_copy(update={"alias": alias, "version": None}), raw, progress
                )
        except MaasError:
            self._restore_alias(name, alias, before)
            raise
        self.registry.record(
            name, self.settings.who, "rollback", alias=alias, from_version=before, to_version=target
        )
        return self.status_of(name) if raw is not None else None

    def start_challenger(
        self, name: str, side: Canary | Shadow, progress: Progress | None = None
    ) -> ModelStatus:
        """Start (or change) a canary or a shadow next to the serving version."""
        raw = self.registry.get_spec(name)
        if raw is None:
            raise VersionNotDeployed(name)
        version = self.registry.get_version(name, side.version).version
        side = side.model_copy(update={"version": version})
        spec = DeploymentSpec.model_validate(raw)
        if spec.mode == "shared":
            raise BadRequest(f"'{name}' is served by the shared pool: deploy it dedicated first")
        primary = self.registry.resolve(name, spec.version, spec.alias).version
        if version == primary:
            raise BadRequest(f"version {version} of '{name}' already is the serving version")
        kind = "canary" if isinstance(side, Canary) else "shadow"
        update = (
            {"canary": side, "shadow": None}
            if kind == "canary"
            else {"canary": None, "shadow": side}
        )
        self._switch(spec.model_copy(update=update), raw, progress)
        sticky = getattr(side, "sticky_header", None)
        self.registry.record(
            name,
            self.settings.who,
            kind,
            from_version=primary,
            to_version=version,
            detail=f"{side.percent:g}% {'to' if kind == 'canary' else 'mirrored to'} "
            f"version {version}" + (f", sticky by header {sticky}" if sticky else ""),
        )
        return self.status_of(name)

    def apply_specs(
        self, specs: list[DeploymentSpec], progress: Progress | None = None
    ) -> dict[str, str]:
        """Make the given specs the stored ones (others stay as they are); all or nothing.

        Every version and alias is checked before anything changes; a spec equal to
        the stored one is left alone, so applying the same file twice changes
        nothing. Returns ``{model: "unchanged" | "created" | "updated"}``.
        """
        stored = self.registry.list_specs()
        result: dict[str, str] = {}
        changed: list[tuple[DeploymentSpec, dict[str, Any] | None]] = []
        for spec in specs:
            self.registry.resolve(spec.model, spec.version, spec.alias)
            if spec.challenger is not None:
                self.registry.get_version(spec.model, spec.challenger.version)
            before = stored.get(spec.model)
            if before == spec.model_dump(exclude_none=True):
                result[spec.model] = "unchanged"
            else:
                result[spec.model] = "created" if before is None else "updated"
                changed.append((spec, before))
        if not changed:
            return result
        for spec, _ in changed:
            self.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
        try:
            targets = self.apply()
            self.wait_running({s.model: targets[s.model] for s, _ in changed}, progress)
        except MaasError as exc:
            for spec, before in changed:
                if before is None:
                    self.registry.delete_spec(spec.model)
                else:
                    self.registry.set_spec(spec.model, before)
            self.apply()
            for spec, _ in changed:
                self._failed(spec, exc)
            raise
        for spec, _ in changed:
            self.registry.record(
                spec.model,
                self.settings.who,
                "apply",
                alias=spec.alias,
                to_version=targets[spec.model],
                detail=result[spec.model],
            )
        return result

    def undeploy(self, name: str, progress: Progress | None = None) -> None:
        """Stop serving ``name``; its versions stay registered."""
        if self.registry.get_spec(name) is None:
            raise VersionNotDeployed(name)
        running = self._serving_version(name)
        self.registry.delete_spec(name)
        self.registry.record(name, self.settings.who, "undeploy", from_version=running)
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
                if name not in apps and SHARED_APP in apps and self._is_shared(name):
                    app = apps[SHARED_APP]
                    state, running_version = app.get("status"), version
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

    # -- helpers ----------------------------------------------------------------------
    def _switch(
        self, spec: DeploymentSpec, previous: dict[str, Any] | None, progress: Progress | None
    ) -> None:
        """Store ``spec``, apply, and wait; put ``previous`` back if the new state fails.

        Serve replaces replicas as a rolling update (new ones start and load before
        old ones stop), so callers see no failed request during a switch.
        """
        self.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
        try:
            targets = self.apply()
            self.wait_running({spec.model: targets[spec.model]}, progress)
        except MaasError as exc:
            # Put back what served before so a bad version never takes the traffic.
            if previous is None:
                self.registry.delete_spec(spec.model)
            else:
                self.registry.set_spec(spec.model, previous)
            self.apply()
            self._failed(spec, exc)
            raise

    def _failed(self, spec: DeploymentSpec, exc: MaasError) -> None:
        """Record a refused deploy; `maas status` shows it until the next action."""
        version: str | None
        try:
            version = self.registry.resolve(spec.model, spec.version, spec.alias).version
        except MaasError:
            version = spec.version
        self.registry.record(
            spec.model,
            self.settings.who,
            FAILED_ACTION,
            alias=spec.alias,
            to_version=version,
            detail=exc.message[:2000],
        )

    def _following(self, raw: dict[str, Any] | None, alias: str) -> DeploymentSpec | None:
        """The spec if its deployment follows ``alias`` (pinned specs follow production)."""
        if raw is None:
            return None
        spec = DeploymentSpec.model_validate(raw)
        if spec.alias == alias or (spec.alias is None and alias == PRODUCTION):
            return spec
        return None

    def _restore_alias(self, name: str, alias: str, version: str | None) -> None:
        if version is None:
            self.registry.client.delete_registered_model_alias(name, alias)
        else:
            self.registry.set_alias(name, alias, version)

    def _serving_version(self, name: str) -> str | None:
        apps = self.serve.applications()
        if name not in apps and self._is_shared(name):
            raw = self.registry.get_spec(name) or {}
            spec = DeploymentSpec.model_validate(raw)
            return self.registry.resolve(name, spec.version, spec.alias).version
        return _app_version(apps.get(name) or {})

    def _is_shared(self, name: str) -> bool:
        raw = self.registry.get_spec(name)
        return raw is not None and raw.get("mode") == "shared"

    # -- status ------------------------------------------------------------------------
    def status(self) -> list[ModelStatus]:
        """One row per model that has a deployment spec."""
        specs = self.registry.list_specs()
        apps = self.serve.applications()
        last = self.registry.last_events()
        rows = []
        for name, raw in sorted(specs.items()):
            row = self._row(DeploymentSpec.model_validate(raw), apps)
            event = last.get(name)
            if event is not None and event.action == FAILED_ACTION:
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(event.time_ms / 1000))
                refused = (
                    f"deploy of v{event.to_version} refused at {when} UTC, still serving "
                    f"v{row.version}: {event.detail}"
                )
                row.message = f"{refused}\n{row.message}".strip()
            rows.append(row)
        return rows

    def status_of(self, name: str) -> ModelStatus:
        """The status row of one deployed model."""
        raw = self.registry.get_spec(name)
        if raw is None:
            raise VersionNotDeployed(name)
        return self._row(DeploymentSpec.model_validate(raw), self.serve.applications())

    def _row(self, spec: DeploymentSpec, apps: dict[str, Any]) -> ModelStatus:
        if spec.mode != "shared":
            return _row(spec, apps.get(spec.model))
        pool = apps.get(SHARED_APP) or {}
        try:
            version: str | None = self.registry.resolve(
                spec.model, spec.version, spec.alias
            ).version
        except MaasError:
            version = None
        running, target = _replicas((pool.get("deployments") or {}).get(SHARED_DEPLOYMENT))
        return ModelStatus(
            model=spec.model,
            version=version if pool else None,
            alias=spec.alias,
            replicas_running=running,
            replicas_target=int(target or 0),
            replicas_spec="shared pool",
            num_cpus=self.settings.shared_num_cpus,
            num_gpus=0,
            health=pool.get("status") or "NOT_RUNNING",
            route=f"{model_route(spec.model)}/predict",
            traffic=f"v{version} 100% (shared pool)",
        )


def rollback_target(events: list[HistoryEvent], alias: str) -> str | None:
    """The version ``alias`` goes back to: replay promotes (push) and rollbacks (pop)."""
    stack: list[str] = []
    for e in events:
        if e.alias != alias:
            continue
        if e.action == "promote" and e.from_version and e.from_version != e.to_version:
            stack.append(e.from_version)
        elif e.action == "rollback" and stack:
            stack.pop()
    return stack[-1] if stack else None


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


def _replicas(dep: dict[str, Any] | None) -> tuple[int, int | None]:
    replicas = (dep or {}).get("replicas") or []
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    return running, (dep or {}).get("target_num_replicas")


def _row(spec: DeploymentSpec, app: dict[str, Any] | None) -> ModelStatus:
    app = app or {}
    deployments = app.get("deployments") or {}
    running, target = _replicas(deployments.get(MODEL_DEPLOYMENT))
    if target is None:
        target = spec.min_replicas if spec.autoscaling else (spec.num_replicas or 1)
    state = app.get("status") or "NOT_RUNNING"
    version = _app_version(app)
    side = spec.challenger
    challenger = None
    traffic = f"v{version} 100%" if version else "-"
    if side is not None:
        c_running, c_target = _replicas(deployments.get(CHALLENGER_DEPLOYMENT))
        role = "canary" if spec.canary is not None else "shadow"
        challenger = VersionRole(
            version=side.version,
            role=role,
            replicas_running=c_running,
            replicas_target=int(c_target or 0),
        )
        if spec.canary is not None:
            pct = spec.canary.percent
            traffic = f"v{version} {100 - pct:g}% / v{side.version} {pct:g}% (canary)"
            if spec.canary.sticky_header:
                traffic += f", sticky by {spec.canary.sticky_header}"
        else:
            traffic = f"v{version} 100%, shadow v{side.version} gets {side.percent:g}% mirrored"
    return ModelStatus(
        model=spec.model,
        version=version,
        alias=spec.alias,
        replicas_running=running,
        replicas_target=int(target or 0),
        replicas_spec=spec.replicas_text(),
        num_cpus=spec.num_cpus,
        num_gpus=spec.num_gpus,
        health=state,
        route=f"{model_route(spec.model)}/predict",
        message=_app_error(app) if state in _FAILED else "",
        traffic=traffic,
        challenger=challenger,
    )
