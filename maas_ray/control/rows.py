"""Status rows from the stored specs and what Serve runs (what `maas status` prints)."""

from __future__ import annotations

from typing import Any

from maas_ray.control.capacity import bundle_of
from maas_ray.control.spec import (
    CHALLENGER_DEPLOYMENT,
    MODEL_DEPLOYMENT,
    DeploymentSpec,
    model_route,
)
from maas_ray.control.status import ModelStatus, VersionRole

FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}


def app_version(app: dict[str, Any]) -> str | None:
    args = (app.get("deployed_app_config") or {}).get("args") or {}
    version = args.get("version")
    return None if version is None else str(version)


def app_error(app: dict[str, Any]) -> str:
    messages = [app.get("message") or ""]
    for dep in (app.get("deployments") or {}).values():
        if dep.get("message"):
            messages.append(dep["message"])
    return "\n".join(m for m in messages if m).strip() or "no message from Serve"


def replicas(dep: dict[str, Any] | None) -> tuple[int, int | None]:
    replicas = (dep or {}).get("replicas") or []
    running = sum(1 for r in replicas if r.get("state") == "RUNNING")
    return running, (dep or {}).get("target_num_replicas")


def row(spec: DeploymentSpec, app: dict[str, Any] | None) -> ModelStatus:
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
        c_running, c_target = replicas(deployments.get(CHALLENGER_DEPLOYMENT))
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
    conf = app.get("deployed_app_config") or {}
    if (conf.get("args") or {}) != (want.get("args") or {}):
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
