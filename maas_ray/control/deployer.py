"""Desired state (specs in the registry) -> running state (Serve applications)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from maas_ray.control import capacity, rows
from maas_ray.control.applications import applications, serve_config, shared_application
from maas_ray.control.rows import FAILED, FAILED_ACTION, app_error, app_version, drifted
from maas_ray.control.serve_api import ServeAPI
from maas_ray.control.status import ModelStatus, NodeResources
from maas_ray.errors import (
    BadRequest,
    Conflict,
    DeploymentFailed,
    InsufficientResources,
    MaasError,
    VersionNotDeployed,
)
from maas_ray.registry import HistoryEvent, Registry
from maas_ray.security.ray_token import dashboard_headers
from maas_ray.settings import Settings
from maas_ray.spec import SHARED_APP, Canary, DeploymentSpec, Shadow, challenger_app, is_challenger
from maas_ray.wire import PRODUCTION

logger = logging.getLogger(__name__)

Progress = Callable[[str], None]
Overrides = dict[str, dict[str, Any] | None]  # model -> spec to plan with (None: removed)
# After a refused change, how long to wait for the version before it to answer again.
RESTORE_WAIT_S = 120.0


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
        found no room for; ``no_surge``: models replaced in place (see _switch).
        """
        s = self.settings
        apps = []
        targets: dict[str, str] = {}
        shared = False
        specs = {**self.registry.list_specs(), **(overrides or {})}
        for name, raw in sorted(specs.items()):
            if raw is None or name in leave_out:
                continue
            try:
                spec = DeploymentSpec.model_validate(raw)
                version = self.registry.resolve(name, spec.version, spec.alias).version
            except (MaasError, ValueError) as exc:
                logger.warning("skipping deployment of %s: %s", name, exc)
                continue
            targets[name] = version
            if spec.mode == "shared":
                shared = True  # served by the pool; the gateway finds it in the registry
                continue
            with_side = name not in no_challenger
            apps += applications(
                spec, version, s.mlflow_uri, surge=name not in no_surge, challenger=with_side
            )
            if spec.challenger is not None and with_side:
                targets[challenger_app(name)] = spec.challenger.version
        # The pool always runs, warm: it answers a dedicated model's first requests
        # while that model's own replicas start (see gateway/app.py). With no
        # shared model it reserves no CPU, so it never keeps a model replica out.
        num_cpus = s.shared_num_cpus if shared else 0.0
        apps.append(shared_application(s.mlflow_uri, s.shared_replicas, num_cpus))
        return serve_config(apps, s.host, s.serve_port, s.mlflow_uri), targets

    def nodes(self) -> list[capacity.Node]:
        """The Ray cluster's alive nodes with their logical resources (live)."""
        return capacity.read_nodes(self.settings.ray_address)

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
        running = self._serving_version(spec.model)
        self._switch(spec, previous, progress, what=f"deploy of {spec.model} v{target.version}")
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
                self._switch(
                    spec.model_copy(update=update),
                    raw,
                    progress,
                    what=f"promote of {name} v{version}",
                    in_place_if_full=True,
                )
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
            kind = spec.side
            primary = self._serving_version(name)
            self._switch(
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
                    following.model_copy(update={"alias": alias, "version": None}),
                    raw,
                    progress,
                    what=f"rollback of {name} to v{target}",
                    in_place_if_full=True,
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
        self._switch(
            spec.model_copy(update=update), raw, progress, what=f"{kind} of {name} v{version}"
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
            elif spec.mode != "shared" and _drifted(spec.model, apps, running):
                result[spec.model] = "reconciled"
                changed.append((spec, before))
            else:
                result[spec.model] = "unchanged"
        if not changed:
            return result
        overrides: Overrides = {s.model: s.model_dump(exclude_none=True) for s, _ in changed}
        self.admit(overrides, "apply of " + ", ".join(sorted(overrides)))
        steps = {s.model: st for s, before in changed if (st := _steps(s, before))}
        saved = False
        try:
            for i in range(max((len(st) for st in steps.values()), default=0)):
                # A model with fewer steps stays at its last one meanwhile.
                now: Overrides = {m: st[min(i, len(st) - 1)] for m, st in steps.items()}
                self._converge(sorted(now), progress, now)
            for spec, _ in changed:
                self.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
            saved = True
            targets = self._converge([s.model for s, _ in changed], progress)
        except MaasError as exc:
            for spec, before in changed if saved else []:
                if before is None:
                    self.registry.delete_spec(spec.model)
                else:
                    self.registry.set_spec(spec.model, before)
            self._settle([s.model for s, _ in changed], progress)
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
        timeout_s = self.settings.deploy_timeout_s
        if self._wait_gone([name, challenger_app(name)], timeout_s, progress):
            raise DeploymentFailed(f"'{name}' still running after undeploy")

    def wait_running(
        self,
        targets: dict[str, str],
        progress: Progress | None = None,
        failures: dict[str, str] | None = None,
        timeout_s: float | None = None,
        apps: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Poll Serve until every application in ``targets`` runs its target version
        (and, for those in ``apps``, that config: args and user_config, so a changed
        canary split or batching is seen applied, not only the version).

        With ``failures``, an application that fails or times out is recorded there
        (name -> reason) instead of raising, and the others are still waited for.
        """
        timeout_s = self.settings.deploy_timeout_s if timeout_s is None else timeout_s
        deadline = time.monotonic() + timeout_s
        pending = dict(targets)
        while pending:
            live = self.serve.applications()
            for name, version in list(pending.items()):
                app = live.get(name) or {}
                state, running_version = app.get("status"), app_version(app)
                shared = not is_challenger(name) and name not in live and SHARED_APP in live
                if shared and self._is_shared(name):
                    app = live[SHARED_APP]
                    state, running_version = app.get("status"), version
                want = (apps or {}).get(name)
                applied = want is None or name not in live or rows.applied(app, want)
                if state == "RUNNING" and running_version == version and applied:
                    del pending[name]
                elif state in FAILED and running_version == version:
                    why = f"version {version} failed: {app_error(app)}"
                    if failures is None:
                        raise DeploymentFailed(f"{rows.label(name)} {why}")
                    failures[name] = why
                    del pending[name]
                elif progress:
                    progress(f"{name} v{version}: {state or 'NOT_STARTED'}")
            if pending and time.monotonic() > deadline:
                waiting = ", ".join(f"{n} v{v}" for n, v in pending.items())
                if failures is not None:
                    for name, version in pending.items():
                        failures[name] = f"version {version} not running after {timeout_s:.0f}s"
                    return
                raise DeploymentFailed(f"timed out after {timeout_s:.0f}s waiting for {waiting}")
            if pending:
                time.sleep(0.5)

    def _wait_gone(
        self, names: list[str], timeout_s: float, progress: Progress | None = None
    ) -> list[str]:
        """Wait until Serve runs none of ``names``; return those still there at the end."""
        deadline = time.monotonic() + timeout_s
        while True:
            left = [n for n in names if n in self.serve.applications()]
            if not left or time.monotonic() > deadline:
                return left
            if progress:
                progress("stopping " + ", ".join(left))
            time.sleep(0.5)

    # -- helpers ----------------------------------------------------------------------
    def _switch(
        self,
        spec: DeploymentSpec,
        previous: dict[str, Any] | None,
        progress: Progress | None,
        what: str,
        in_place_if_full: bool = False,
    ) -> None:
        """Admit, store ``spec``, apply, and wait; put ``previous`` back if it fails.

        Serve replaces replicas as a rolling update with one surge replica (a new
        one starts and loads before an old one stops), so callers see no failed
        request during a switch. ``in_place_if_full``: where there is room for the
        change but not for its surge replica (a rollback on a full cluster), replace
        in place instead of refusing: requests wait in the ingress while the new
        replica starts. A challenger that goes away first stops getting traffic; a
        new one gets traffic only once it runs (see _steps).
        """
        overrides: Overrides = {spec.model: spec.model_dump(exclude_none=True)}
        no_surge = self._admit_switch(overrides, what, in_place_if_full)
        stored = False
        try:
            for step in _steps(spec, previous):
                step_overrides: Overrides = {spec.model: step}
                step_surge = self._admit_switch(step_overrides, what, in_place_if_full)
                self._converge([spec.model], progress, step_overrides, step_surge)
            self.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
            stored = True
            self._converge([spec.model], progress, no_surge=no_surge)
        except MaasError as exc:
            # Put back what served before so a bad version never takes the traffic.
            if stored:
                if previous is None:
                    self.registry.delete_spec(spec.model)
                else:
                    self.registry.set_spec(spec.model, previous)
            self._settle([spec.model], progress)
            self._failed(spec, exc)
            raise

    def _admit_switch(self, overrides: Overrides, what: str, in_place: bool) -> frozenset[str]:
        """Admit a change; with ``in_place``, fall back to replacing without a surge
        replica. Returns the models to replace in place."""
        try:
            self.admit(overrides, what)
            return frozenset()
        except InsufficientResources:
            if not in_place:
                raise
            no_surge = frozenset(overrides)
            self.admit(overrides, what, no_surge)
            logger.warning("%s: no room for a surge replica, replacing in place", what)
            return no_surge

    def _converge(
        self,
        names: list[str],
        progress: Progress | None,
        overrides: Overrides | None = None,
        no_surge: frozenset[str] = frozenset(),
        failures: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, str]:
        """PUT the desired config and wait until ``names`` (and their challengers) run
        it, version and config, and a challenger the config drops is gone."""
        config, targets = self.desired(overrides, no_surge)
        self.serve.put_config(config)
        apps = {a["name"]: a for a in config["applications"]}
        wanted = {a: targets[a] for n in names for a in (n, challenger_app(n)) if a in targets}
        self.wait_running(wanted, progress, failures, timeout_s, apps)
        gone = [a for n in names for a in (n, challenger_app(n)) if a not in targets]
        timeout_s = self.settings.deploy_timeout_s if timeout_s is None else timeout_s
        for name in self._wait_gone(gone, timeout_s, progress):
            logger.warning("%s still stopping after %.0fs", name, timeout_s)
        return targets

    def _settle(self, names: list[str], progress: Progress | None) -> None:
        """After a refused change: apply the stored state again and wait until what
        served before answers again (or is gone), so the caller returns to a platform
        that runs what the registry says."""
        try:
            failures: dict[str, str] = {}
            self._converge(names, progress, failures=failures, timeout_s=RESTORE_WAIT_S)
            for name, why in failures.items():
                logger.error(
                    "%s did not come back after a refused change: %s", rows.label(name), why
                )
        except MaasError as exc:
            logger.error("could not put back the state before a refused change: %s", exc)

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
        return app_version(apps.get(name) or {})

    def _is_shared(self, name: str) -> bool:
        raw = self.registry.get_spec(name)
        return raw is not None and raw.get("mode") == "shared"

    # -- status ------------------------------------------------------------------------
    def status(self) -> list[ModelStatus]:
        """One row per model that has a deployment spec, with why replicas wait."""
        return rows.status(self)

    def status_of(self, name: str) -> ModelStatus:
        """The status row of one deployed model."""
        return rows.status_of(self, name)


def _drifted(model: str, wanted: dict[str, Any], running: dict[str, Any]) -> bool:
    """True when Serve does not run ``model``'s applications (its own and its
    challenger's) as the config ``wanted`` says."""
    side = challenger_app(model)
    if side in running and side not in wanted:
        return True
    return any(drifted(wanted.get(a), running.get(a)) for a in (model, side))


def _steps(spec: DeploymentSpec, previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The specs to pass through on the way from ``previous`` to ``spec``.

    A challenger that goes away (or is replaced by another version) is first set to
    0%: the primary's replicas stop sending it requests before it stops, or they
    would hang in the handle until its replica is killed (seen: 20 s, then 500s). A
    new challenger starts at 0% and gets its share once it runs, so no request waits
    for it to load. Both are reconfigures of the primary, not new replicas.
    """
    steps = []
    before = DeploymentSpec.model_validate(previous) if previous is not None else None
    old = before.challenger if before is not None and before.mode != "shared" else None
    new = spec.challenger if spec.mode != "shared" else None
    if previous is not None and old is not None and old.percent > 0:
        if new is None or new.version != old.version:
            steps.append(_at_zero(previous))
    if new is not None and new.percent > 0 and (old is None or old.version != new.version):
        steps.append(_at_zero(spec.model_dump(exclude_none=True)))
    return steps


def _at_zero(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored spec with its canary's or shadow's share set to 0%."""
    kind = "canary" if raw.get("canary") is not None else "shadow"
    return {**raw, kind: {**raw[kind], "percent": 0}}


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
