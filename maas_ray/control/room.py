"""Reading the cluster's room and explaining it: the nodes Ray reports, why a
running model's replicas wait, and which autoscaling maxima the cluster cannot reach.

Planning a change against that room (admission, restore order) is capacity.py;
this module only reads and words what the status rows show.
"""

from __future__ import annotations

from typing import Any

from maas_ray.control.capacity import (
    ACTIVE,
    RESOURCES,
    Bundle,
    Node,
    bundle_of,
    describe,
    first_fit,
    fits,
    free_text,
    placed_replicas,
    plan,
    target_replicas,
)
from maas_ray.errors import PlatformUnavailable


def read_nodes(gcs_address: str) -> list[Node]:
    """The alive nodes with Ray's logical totals and usage (from the GCS)."""
    try:
        from ray.autoscaler.v2.sdk import get_cluster_status

        status = get_cluster_status(gcs_address, timeout=10)
    except Exception as exc:  # the GCS client raises its own RpcError/ConnectionError types
        raise PlatformUnavailable(
            f"the Ray cluster at {gcs_address} does not answer ({exc.__class__.__name__}): "
            "is the platform up? run `maas up`"
        ) from exc
    nodes = []
    for info in [*status.active_nodes, *status.idle_nodes]:
        total, used = info.total_resources(), info.used_resources()
        nodes.append(
            Node(
                node_id=info.node_id or "",
                address=info.ip_address,
                is_head="node:__internal_head__" in total,
                total={r: float(total.get(r, 0.0)) for r in RESOURCES},
                used={r: float(used.get(r, 0.0)) for r in RESOURCES},
            )
        )
    return nodes


def autoscaling_warnings(
    config: dict[str, Any], running: dict[str, Any], nodes: list[Node], app: str
) -> list[str]:
    """A warning per deployment of ``app`` whose autoscaling maximum cannot all be placed."""
    warnings: list[str] = []
    result = plan(config, running, nodes, only=None, surge=False)
    if not result.fits:
        return warnings
    leftover = [dict(f) for f in result.free]
    first_fit(result.wants, leftover, None, inplace=True)
    for conf in config.get("applications") or []:
        if conf["name"] != app:
            continue
        for dep in conf.get("deployments") or []:
            auto = dep.get("autoscaling_config")
            if not auto:
                continue
            live = ((running.get(app) or {}).get("deployments") or {}).get(dep["name"])
            now = max(target_replicas(dep, live), len(placed_replicas(live)))
            extra = int(auto["max_replicas"]) - now
            bundle = bundle_of(dep.get("ray_actor_options"))
            room = _count_fitting(bundle, leftover, extra)
            if room < extra:
                warnings.append(
                    f"{app}: max_replicas {auto['max_replicas']} x {describe(bundle)} does "
                    f"not fit: the cluster has room for {now + room} replicas now "
                    f"({free_text(nodes, result.free)}); autoscaling stops there"
                )
    return warnings


def _count_fitting(bundle: Bundle, free: list[Bundle], limit: int) -> int:
    if not any(bundle.values()):
        return limit
    count = 0
    free = [dict(f) for f in free]
    while count < limit:
        for node_free in free:
            if fits(bundle, node_free):
                for r in RESOURCES:
                    node_free[r] -= bundle.get(r, 0.0)
                count += 1
                break
        else:
            break
    return count


def pending_reasons(app: dict[str, Any], nodes: list[Node]) -> list[str]:
    """Why replicas of a running app wait: one line per deployment with unplaced replicas."""
    lines = []
    free = [n.free for n in nodes]
    for dep_name, dep in (app.get("deployments") or {}).items():
        waiting = [
            r
            for r in dep.get("replicas") or []
            if r.get("state") in ACTIVE and not r.get("node_id")
        ]
        if not waiting:
            continue
        bundle = bundle_of((dep.get("deployment_config") or {}).get("ray_actor_options"))
        if dep.get("required_resources"):
            bundle = {r: float(dep["required_resources"].get(r) or 0.0) for r in RESOURCES}
        room = any(fits(bundle, f) for f in free)
        lines.append(
            f"{len(waiting)} {dep_name} replica{'s' if len(waiting) > 1 else ''} "
            f"{'starting' if room else 'waiting for ' + describe(bundle)}: "
            f"{free_text(nodes, free)}"
        )
    return lines
