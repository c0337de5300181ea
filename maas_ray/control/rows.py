"""Status rows from the stored specs and what Serve runs (what `maas status` prints)."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any

from maas_ray.control import capacity, room
from maas_ray.control.capacity import bundle_of
from maas_ray.control.status import ModelStatus, NodeResources, VersionRole
from maas_ray.errors import MaasError, PlatformUnavailable, VersionNotDeployed
from maas_ray.routes import url
from maas_ray.spec import (
    MODEL_DEPLOYMENT,
    SHARED_APP,
    SHARED_DEPLOYMENT,
    DeploymentSpec,
    challenger_app,
    is_challenger,
    model_of,
)

if TYPE_CHECKING:
    from maas_ray.control.deployer import ControlPlane

logger = logging.getLogger(__name__)

FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}
FAILED_ACTION = "deploy-failed"  # history action of a refused deploy, promote or apply


def app_version(app: dict[str, Any]) -> str | None:
    args = (app.get("deployed_app_config") or {}).get("args") or {}
    version = args.get("version")
    return None if version is None else str(version)


# Terminal colour codes Ray puts in a replica's error (its actor's name in cyan).
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The last line of a Python traceback: what was raised, and its message.
_RAISED = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt): \S")


def app_error(app: dict[str, Any]) -> str:
    """Serve's messages about a failed application, the replica's own error first: a
    replica that could not start carries a traceback of ~40 lines whose cause is its
    last line (``RuntimeError: weights are corrupt``)."""
    messages = [app.get("message") or ""]
    for dep in (app.get("deployments") or {}).values():
        if dep.get("message"):
            messages.append(dep["message"])
    text = _ANSI.sub("", "\n".join(m for m in messages if m)).strip()
    if not text:
        return "no message from Serve"
    raised = [line.strip() for line in text.splitlines() if _RAISED.match(line.strip())]
    return f"{raised[-1]}\n{text}" if raised else text


def label(app: str) -> str:
    """How messages name an application: ``'tabular'`` or ``the canary/shadow of 'tabular'``."""
    if is_challenger(app):
        return f"the canary/shadow of '{model_of(app)}'"
    return f"'{app}'"


def applied(app: dict[str, Any], want: dict[str, Any]) -> bool:
    """True when Serve took application config ``want``: its args and each deployment's
    user_config (the canary split) are what Serve says it deployed."""
    conf = app.get("deployed_app_config") or {}
    if (conf.get("args") or {}) != (want.get("args") or {}):
        return False
    deployed = {d.get("name"): d for d in conf.get("deployments") or []}
    return all(
        (deployed.get(d["name"]) or {}).get("user_config") == d["user_config"]
        for d in want.get("deployments") or []
        if "user_config" in d
    )


def replicas(dep: dict[str, Any] | None) -> tuple[int, int | None]:
    replicas = (dep or {}).get("replicas") or []
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    return running, (dep or {}).get("target_num_replicas")


def row(
    spec: DeploymentSpec, app: dict[str, Any] | None, side_app: dict[str, Any] | None = None
) -> ModelStatus:
    """A dedicated model's status row from its Serve application (and its challenger's)."""
    app = app or {}
    deployments = app.get("deployments") or {}
    running, target = replicas(deployments.get(MODEL_DEPLOYMENT))
    if target is None:
        target = spec.min_replicas if spec.autoscaling else (spec.num_replicas or 1)
    state = app.get("status") or "NOT_RUNNING"
    version = app_version(app)
    side = spec.challenger
    challenger = None
    traffic = f"v{version} 100%" if version else "-"
    if side is not None:
        side_deps = (side_app or {}).get("deployments") or {}
        c_running, c_target = replicas(side_deps.get(MODEL_DEPLOYMENT))
        challenger = VersionRole(
            version=side.version,
            role=str(spec.side),
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
        route=url("predict", name=spec.model),
        message=app_error(app) if state in FAILED else "",
        traffic=traffic,
        challenger=challenger,
    )


def drifted(want: dict[str, Any] | None, app: dict[str, Any] | None) -> bool:
    """True when Serve does not run application ``want`` as the config says (or at all)."""
    if want is None:
        return False
    if app is None or app.get("status") in FAILED:
        return True
    if not applied(app, want):
        return True
    deployments = app.get("deployments") or {}
    for dep in want.get("deployments") or []:
        live = deployments.get(dep["name"])
        if live is None:
            return True
        cfg = live.get("deployment_config") or {}
        if bundle_of(cfg.get("ray_actor_options")) != bundle_of(dep.get("ray_actor_options")):
            return True
        if "num_replicas" in dep and live.get("target_num_replicas") != dep["num_replicas"]:
            return True
        auto, live_auto = dep.get("autoscaling_config"), cfg.get("autoscaling_config") or {}
        if bool(auto) != bool(live_auto):
            return True
        if auto and any(auto[k] != live_auto.get(k) for k in ("min_replicas", "max_replicas")):
            return True
    return len(deployments) != len(want.get("deployments") or [])


def cluster(control: ControlPlane) -> list[NodeResources]:
    """Per node: logical CPU and GPU used of total, host memory used of total."""
    memory = control.serve.host_memory()
    rows = []
    for node in control.nodes():
        used_mem, total_mem = memory.get(node.node_id, (0, 0))
        rows.append(
            NodeResources(
                node_id=node.node_id,
                address=node.address,
                is_head=node.is_head,
                cpu_used=round(node.used["CPU"], 4),
                cpu_total=node.total["CPU"],
                gpu_used=round(node.used["GPU"], 4),
                gpu_total=node.total["GPU"],
                memory_used_bytes=used_mem,
                memory_total_bytes=total_mem,
            )
        )
    return rows


def status(control: ControlPlane) -> list[ModelStatus]:
    """One row per model that has a deployment spec, with why replicas wait."""
    specs = control.registry.list_specs()
    apps = control.serve.applications()
    last = control.registry.last_events()
    nodes = _nodes_or_none(control)
    # The whole desired config (one registry call per model) only for the
    # autoscaling warnings.
    scaling = any("min_replicas" in raw for raw in specs.values())
    config = control.desired()[0] if nodes is not None and scaling else {}
    rows = []
    for name, raw in sorted(specs.items()):
        row = _row(control, DeploymentSpec.model_validate(raw), apps, nodes, config)
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


def status_of(control: ControlPlane, name: str) -> ModelStatus:
    """The status row of one deployed model."""
    raw = control.registry.get_spec(name)
    if raw is None:
        raise VersionNotDeployed(name)
    nodes = _nodes_or_none(control)
    spec = DeploymentSpec.model_validate(raw)
    config = control.desired()[0] if nodes is not None and spec.autoscaling else {}
    return _row(control, spec, control.serve.applications(), nodes, config)


def _nodes_or_none(control: ControlPlane) -> list[capacity.Node] | None:
    try:
        return control.nodes()
    except PlatformUnavailable as exc:
        logger.warning("no resource view for status: %s", exc.message)
        return None


def _row(
    control: ControlPlane,
    spec: DeploymentSpec,
    apps: dict[str, Any],
    nodes: list[capacity.Node] | None = None,
    config: dict[str, Any] | None = None,
) -> ModelStatus:
    if spec.mode != "shared":
        side_app = apps.get(challenger_app(spec.model))
        status = row(spec, apps.get(spec.model), side_app)
        if nodes is not None and spec.model in apps:
            waiting = room.pending_reasons(apps[spec.model], nodes)
            if side_app is not None:
                waiting += [f"{spec.side}: {w}" for w in room.pending_reasons(side_app, nodes)]
            status.pending = "; ".join(waiting)
        if nodes is not None and config and spec.autoscaling:
            status.warnings = room.autoscaling_warnings(config, apps, nodes, spec.model)
        stored_side = spec.challenger
        if stored_side is not None and spec.model in apps and side_app is None:
            kind = spec.side
            status.challenger = None
            status.traffic = f"v{status.version} 100%"
            status.warnings.append(
                f"{kind} v{stored_side.version} is stored but not running: `maas up` "
                "found no room for it; `maas apply` or a new canary/shadow retries"
            )
        return status
    pool = apps.get(SHARED_APP) or {}
    try:
        version: str | None = control.registry.resolve(spec.model, spec.version, spec.alias).version
    except MaasError:
        version = None
    running, target = replicas((pool.get("deployments") or {}).get(SHARED_DEPLOYMENT))
    return ModelStatus(
        model=spec.model,
        version=version if pool else None,
        alias=spec.alias,
        replicas_running=running,
        replicas_target=int(target or 0),
        replicas_spec="shared pool",
        num_cpus=control.settings.shared_num_cpus,
        num_gpus=0,
        health=pool.get("status") or "NOT_RUNNING",
        route=url("predict", name=spec.model),
        traffic=f"v{version} 100% (shared pool)",
    )
