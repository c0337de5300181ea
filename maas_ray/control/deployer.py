"""Desired state (specs in the registry) -> running state (Serve applications)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from maas_ray.control import capacity, history, rollout, room, rows, waiting
from maas_ray.control.applications import (
    Overload,
    applications,
    serve_config,
    shared_application,
)
from maas_ray.control.serve_api import ServeAPI
from maas_ray.control.status import ModelStatus, NodeResources
from maas_ray.errors import (
    BadRequest,
    Conflict,
    DeploymentFailed,
    MaasError,
    ModelNotFound,
    VersionNotDeployed,
)
from maas_ray.registry import Registry
from maas_ray.security.ray_token import dashboard_headers
from maas_ray.settings import Settings
from maas_ray.spec import SHARED_APP, Canary, DeploymentSpec, Shadow, challenger_app
from maas_ray.wire import PRODUCTION

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
Overrides = dict[str, dict[str, Any] | None]  # model -> spec to plan with (None: removed)


class ControlPlane:
    """Turns the registry's deployment specs into Serve applications and reports on them."""

    def __init__(self, settings: Settings, registry: Registry | None = None) -> None:
        self.settings = settings
        self.registry = registry or Registry(settings.mlflow_uri)
        self.serve = ServeAPI(
            settings.dashboard_url,
            timeout_s=settings.request_timeout_s,
            headers=dashboard_headers(settings),
        )

    # -- desired state --------------------------------------------------------
    def _target(self, name: str, spec: DeploymentSpec, aliases: dict[str, str] | None) -> str:
        """The version a spec serves, from what ``desired`` read in its one registry call:
        a version as stored (deploy, promote and apply checked that it exists before
        storing it), an alias through the model's aliases. Only a spec with neither (the
        latest version) costs a call of its own: with one call per model, every change
        and status row asked the registry once for each deployed model."""
        if spec.version is not None:
            return spec.version
        if spec.alias is not None and aliases is not None:
            version = aliases.get(spec.alias)
            if version is None:
                raise ModelNotFound(name, f"@{spec.alias}")
            return version
        return self.registry.resolve(name, spec.version, spec.alias).version

    def apply(
        self, overrides: Overrides | None = None, no_surge: frozenset[str] = frozenset()
    ) -> dict[str, str]:
        """PUT the desired config; return the version each model should reach.

        Shared models map to the version the pool will load for them.
        """
        config, targets = self.desired(overrides, no_surge)
        self.serve.put_config(config)
        return targets

    def desired(
        self,
        overrides: Overrides | None = None,
        no_surge: frozenset[str] = frozenset(),
        leave_out: frozenset[str] = frozenset(),
        no_challenger: frozenset[str] = frozenset(),
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """The full Serve config and ``{application: version}``, from one pass over the
        stored specs (``overrides`` replace stored ones, to plan a change before storing
        it). A model's canary or shadow is an application of its own (challenger_app).

        ``leave_out`` / ``no_challenger``: models (or their canary/shadow) a restore
        found no room for; ``no_surge``: models replaced in place (see rollout.switch).
        """
        s = self.settings
        apps = []
        targets: dict[str, str] = {}
        shared = False
        stored, aliases = self.registry.list_specs_and_aliases()
        specs = {**stored, **(overrides or {})}
        for name, raw in sorted(specs.items()):
            if raw is None or name in leave_out:
                continue
            try:
                spec = DeploymentSpec.model_validate(raw)
                version = self._target(name, spec, aliases.get(name))
            except (MaasError, ValueError) as exc:
                logger.warning("skipping deployment of %s: %s", name, exc)
                continue
            targets[name] = version
            if spec.mode == "shared":
                shared = True  # served by the pool; the gateway finds it in the registry
                continue
            with_side = name not in no_challenger
            apps += applications(
                spec,
                version,
                s.mlflow_uri,
                surge=name not in no_surge,
                challenger=with_side,
                overload=Overload(s.max_queued_requests, s.retry_after_s),
            )
            if spec.challenger is not None and with_side:
                targets[challenger_app(name)] = spec.challenger.version
        # The pool always runs, warm: it answers a dedicated model's first requests
        # while that model's own replicas start (see gateway/app.py). With no
        # shared model it reserves no CPU, so it never keeps a model replica out.
        num_cpus = s.shared_num_cpus if shared else 0.0
        apps.append(shared_application(s.mlflow_uri, s.shared_replicas, num_cpus))
        config = serve_config(
            apps, s.host, s.serve_port, s.mlflow_uri, access_log=s.access_log, grpc_port=s.grpc_port
        )
        return config, targets

    def nodes(self) -> list[capacity.Node]:
        """The Ray cluster's alive nodes with their logical resources (live)."""
        return room.read_nodes(self.settings.ray_address)

    def cluster(self) -> list[NodeResources]:
        """Per node: logical CPU and GPU used of total, host memory used of total."""
        return rows.cluster(self)

    def admit(
        self, overrides: Overrides, what: str, no_surge: frozenset[str] = frozenset()
    ) -> None:
        """Raise InsufficientResources (409) if the change cannot be placed; store nothing."""
        config, _ = self.desired(overrides, no_surge)
        apps = {name for name in overrides} | {SHARED_APP}
        capacity.admit(config, self.serve.applications(), self.nodes(), apps, what)

    # -- actions -------------------------------------------------------------------
    def deploy(self, spec: DeploymentSpec, progress: Progress | None = None) -> ModelStatus:
        """Store ``spec`` and wait until its version answers; undo the change on failure.

        A spec naming neither a version nor an alias serves what the model's stored
        spec serves (a resize keeps the version), or else the latest version.
        """
        stored = self.registry.get_spec(spec.model)
        if spec.version is None and spec.alias is None and stored is not None:
            spec = spec.model_copy(
                update={"version": stored.get("version"), "alias": stored.get("alias")}
            )
        target = self.registry.resolve(spec.model, spec.version, spec.alias)
        if spec.alias is None:
            spec = spec.model_copy(update={"version": target.version})
        previous = stored
        running = history.serving_version(self.serve, self.registry, spec.model)
        rollout.switch(
            self, spec, previous, progress, what=f"deploy of {spec.model} v{target.version}"
        )
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
            spec = history.following(raw, alias)
            if spec is not None:
                update: dict[str, Any] = {"alias": alias, "version": None}
                if spec.challenger is not None and spec.challenger.version == version:
                    update.update(canary=None, shadow=None)
                rollout.switch(
                    self,
                    spec.model_copy(update=update),
                    raw,
                    progress,
                    what=f"promote of {name} v{version}",
                    in_place_if_full=True,
                )
        except MaasError:
            history.restore_alias(self.registry, name, alias, before)
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
            kind = spec.side
            primary = history.serving_version(self.serve, self.registry, name)
            rollout.switch(
                self,
                spec.model_copy(update={"canary": None, "shadow": None}),
                raw,
                progress,
                what=f"end of the {kind} of {name}",
                in_place_if_full=True,
            )
            self.registry.record(
                name,
                self.settings.who,
                f"{kind}-end",
                from_version=spec.challenger.version,
                to_version=primary,
                detail=f"{kind} of version {spec.challenger.version} ended by rollback",
            )
            return self.status_of(name)
        target = history.rollback_target(self.registry.history(name), alias)
        if target is None:
            raise Conflict(
                f"'{name}' has no earlier version of @{alias} to roll back to (see `maas history`)"
            )
        before = self.registry.set_alias(name, alias, target)
        try:
            following = history.following(raw, alias)
            if following is not None:
                rollout.switch(
                    self,
                    following.model_copy(update={"alias": alias, "version": None}),
                    raw,
                    progress,
                    what=f"rollback of {name} to v{target}",
                    in_place_if_full=True,
                )
        except MaasError:
            history.restore_alias(self.registry, name, alias, before)
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
        rollout.switch(
            self, spec.model_copy(update=update), raw, progress, what=f"{kind} of {name} v{version}"
        )
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

        Every version and alias is checked, and the whole change admitted, before
        anything changes. A spec equal to the stored one whose Serve application also
        runs as it says is left alone, so applying the same file twice changes
        nothing; one whose application differs from it (a replica Serve still tries
        to start, a restore that left something out) is reconciled. Returns
        ``{model: "unchanged" | "created" | "updated" | "reconciled"}``.
        """
        stored = self.registry.list_specs()
        running = self.serve.applications()
        config, _ = self.desired({s.model: s.model_dump(exclude_none=True) for s in specs})
        apps = {a["name"]: a for a in config["applications"]}
        result: dict[str, str] = {}
        changed: list[tuple[DeploymentSpec, dict[str, Any] | None]] = []
        for spec in specs:
            self.registry.resolve(spec.model, spec.version, spec.alias)
            if spec.challenger is not None:
                self.registry.get_version(spec.model, spec.challenger.version)
            before = stored.get(spec.model)
            if before != spec.model_dump(exclude_none=True):
                result[spec.model] = "created" if before is None else "updated"
                changed.append((spec, before))
            elif spec.mode != "shared" and rollout.drifted(spec.model, apps, running):
                result[spec.model] = "reconciled"
                changed.append((spec, before))
            else:
                result[spec.model] = "unchanged"
        if not changed:
            return result
        targets = rollout.switch_all(self, changed, progress)
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
        running = history.serving_version(self.serve, self.registry, name)
        self.registry.delete_spec(name)
        self.registry.record(name, self.settings.who, "undeploy", from_version=running)
        self.apply()
        timeout_s = self.settings.deploy_timeout_s
        if waiting.wait_gone(self.serve, [name, challenger_app(name)], timeout_s, progress):
            raise DeploymentFailed(f"'{name}' still running after undeploy")

    # -- status ------------------------------------------------------------------------
    def status(self) -> list[ModelStatus]:
        """One row per model that has a deployment spec, with why replicas wait."""
        return rows.status(self)

    def status_of(self, name: str) -> ModelStatus:
        """The status row of one deployed model."""
        return rows.status_of(self, name)
