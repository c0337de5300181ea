"""Admission: will a desired Serve config fit on the cluster, before anything is stored?

Ray places a replica only where a node has its whole bundle (CPU, GPU, memory)
free; a replica that fits nowhere waits forever, and Serve's deploy waits with it.
So every action that adds replicas is planned here first, against Ray's live
per-node view (the GCS's own resource table, fresh to ~100 ms):

* free on a node = what Ray says is free + what Serve replicas that are stopping
  (or that the change removes) hold there, since those go away;
* what must be placed = every replica of the desired config that is not placed
  yet: new deployments, added replicas, and for a deployment whose replicas are
  replaced (new version, new resources) one surge replica, because Serve starts
  a replacement before it stops an old one (``max_surge_percent``, see spec.py);
* first fit, largest bundles first, per node.

Also checked: the steady state after the change (every replica of the config at
its new size on the nodes' room for Serve), so a rolling update cannot stall half
way. Written by hand: Ray has no dry-run of a placement, and Serve none of a config.

Reading the nodes from Ray, and wording why replicas wait for the status rows,
is room.py.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from maas_ray.errors import InsufficientResources
from maas_ray.spec import SHARED_APP, is_challenger, model_of

logger = logging.getLogger(__name__)

RESOURCES = ("CPU", "GPU", "memory")
ACTIVE = {"STARTING", "UPDATING", "RECOVERING", "RUNNING", "PENDING_MIGRATION"}
_EPS = 1e-6
Bundle = dict[str, float]


@dataclass
class Node:
    """One alive node: Ray's logical totals and what is in use now."""

    node_id: str
    address: str
    is_head: bool
    total: Bundle
    used: Bundle

    @property
    def free(self) -> Bundle:
        return {r: max(self.total.get(r, 0.0) - self.used.get(r, 0.0), 0.0) for r in RESOURCES}


@dataclass
class Want:
    """``count`` replicas of one deployment, each needing ``bundle``, and why."""

    app: str
    deployment: str
    count: int
    bundle: Bundle
    why: str


@dataclass
class Plan:
    """What a desired config needs placed now, and what did not fit."""

    wants: list[Want] = field(default_factory=list)
    unplaced: list[Want] = field(default_factory=list)
    free: list[Bundle] = field(default_factory=list)  # per node, before placing
    steady_short: list[Want] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return not self.unplaced and not self.steady_short


def bundle_of(options: dict[str, Any] | None) -> Bundle:
    """A replica's bundle from its ``ray_actor_options`` (Serve's default: 1 CPU)."""
    options = options or {}
    cpus = options.get("num_cpus")
    return {
        "CPU": 1.0 if cpus is None else float(cpus),
        "GPU": float(options.get("num_gpus") or 0.0),
        "memory": float(options.get("memory") or 0.0),
    }


def target_replicas(deployment: dict[str, Any], running: dict[str, Any] | None) -> int:
    """How many replicas a config deployment asks for now (autoscaling: its start size,
    or the size it already has, within its bounds)."""
    auto = deployment.get("autoscaling_config")
    if not auto:
        return int(deployment.get("num_replicas") or 1)
    low = int(auto.get("min_replicas") or 0)
    high = int(auto.get("max_replicas") or low or 1)
    start = int(auto.get("initial_replicas") or max(low, 1))
    if running and running.get("target_num_replicas") is not None:
        start = int(running["target_num_replicas"])
    return max(min(start, high), low)


def _replaced(new_app: dict[str, Any], old_app: dict[str, Any], name: str) -> bool:
    """True when Serve will replace the running replicas of ``name`` (not just resize)."""
    old_cfg = old_app.get("deployed_app_config") or {}
    old_args, new_args = old_cfg.get("args") or {}, new_app.get("args") or {}
    if old_args != new_args:
        return True
    if old_cfg.get("import_path") != new_app.get("import_path"):
        return True
    new_dep = _deployment(new_app, name) or {}
    old_dep = (old_app.get("deployments") or {}).get(name) or {}
    old_opts = (old_dep.get("deployment_config") or {}).get("ray_actor_options")
    return "ray_actor_options" in new_dep and bundle_of(new_dep["ray_actor_options"]) != (
        bundle_of(old_opts)
    )


def _deployment(app: dict[str, Any], name: str) -> dict[str, Any] | None:
    for dep in app.get("deployments") or []:
        if dep.get("name") == name:
            d: dict[str, Any] = dep
            return d
    return None


def placed_replicas(dep: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The replicas of a running deployment that are alive on a node."""
    return [
        r
        for r in (dep or {}).get("replicas") or []
        if r.get("state") in ACTIVE and r.get("node_id")
    ]


def plan(
    config: dict[str, Any],
    running: dict[str, Any],
    nodes: list[Node],
    only: set[str] | None = None,
    surge: bool = True,
) -> Plan:
    """Plan placing ``config`` (a ServeDeploySchema document) over what runs now.

    Args:
        config: The whole desired Serve config.
        running: Serve's applications now (``ServeAPI.applications()``).
        nodes: ``read_nodes()``.
        only: Application names whose change is being admitted (a model's name
            covers its canary's or shadow's application too); demand of the
            others (replicas still waiting for room) is counted, never blamed.
        surge: Count one surge replica for each replaced deployment whose config
            asks for one (``max_surge_percent``); False: count none (a restore).
    """
    by_id = {n.node_id: i for i, n in enumerate(nodes)}
    free = [n.free for n in nodes]
    room = [dict(f) for f in free]  # steady state: free + everything Serve holds
    wanted = {a["name"]: a for a in config.get("applications") or []}

    def credit(target: list[Bundle], replica: dict[str, Any], bundle: Bundle) -> None:
        i = by_id.get(replica.get("node_id") or "")
        if i is not None:
            for r in RESOURCES:
                target[i][r] = target[i].get(r, 0.0) + bundle.get(r, 0.0)

    for app_name, app in running.items():
        for dep_name, dep in (app.get("deployments") or {}).items():
            held = bundle_of((dep.get("deployment_config") or {}).get("ray_actor_options"))
            if dep.get("required_resources"):
                held = {r: float(dep["required_resources"].get(r) or 0.0) for r in RESOURCES}
            keeps = app_name in wanted and _deployment(wanted[app_name], dep_name) is not None
            for replica in dep.get("replicas") or []:
                state, on_node = replica.get("state"), bool(replica.get("node_id"))
                if on_node and (state == "STOPPING" or (state in ACTIVE and not keeps)):
                    credit(free, replica, held)  # on its way out
                    credit(room, replica, held)
                elif on_node and state in ACTIVE:
                    credit(room, replica, held)

    result = Plan(free=[dict(f) for f in free])
    steady: list[Want] = []
    for app in config.get("applications") or []:
        old = running.get(app["name"])
        for dep in app.get("deployments") or []:
            name = dep["name"]
            live = ((old or {}).get("deployments") or {}).get(name)
            bundle = bundle_of(dep.get("ray_actor_options"))
            if "ray_actor_options" not in dep and live is not None:
                bundle = bundle_of((live.get("deployment_config") or {}).get("ray_actor_options"))
            target = target_replicas(dep, live)
            steady.append(Want(app["name"], name, target, bundle, "steady state"))
            placed = len(placed_replicas(live))
            if live is None or not placed:
                count, why = target, "new replicas"
            elif old is not None and _replaced(app, old, name):
                surges = surge and int(dep.get("max_surge_percent") or 0) > 0
                count = max(target - placed, 0) + (1 if surges else 0)
                why = "replacement replicas, one beside the old ones" if surges else "replicas"
            else:
                count, why = max(target - placed, 0), "added replicas"
            if count:
                result.wants.append(Want(app["name"], name, count, bundle, why))
    result.unplaced = first_fit(result.wants, free, only)
    result.steady_short = first_fit(steady, room, only)
    return result


def fits(bundle: Bundle, free: Bundle) -> bool:
    """True when one replica needing ``bundle`` fits in a node's ``free``."""
    return all(bundle.get(r, 0.0) <= free.get(r, 0.0) + _EPS for r in RESOURCES)


def first_fit(
    wants: list[Want], free: list[Bundle], only: set[str] | None, inplace: bool = False
) -> list[Want]:
    """Place every replica (largest first) on the first node with room; return what did
    not fit, as wants of the apps in ``only`` (or of any app when ``only`` is None).
    ``inplace``: take the room from ``free`` itself."""
    if not inplace:
        free = [dict(f) for f in free]
    singles = [(w, 1) for w in wants for _ in range(w.count)]
    singles.sort(key=lambda item: (item[0].bundle["GPU"], item[0].bundle["CPU"]), reverse=True)
    # Others' waiting replicas go first: they were asked for earlier.
    singles.sort(key=lambda item: only is not None and model_of(item[0].app) in only)
    short: dict[tuple[str, str], Want] = {}
    for want, _ in singles:
        for node_free in free:
            if fits(want.bundle, node_free):
                for r in RESOURCES:
                    node_free[r] -= want.bundle.get(r, 0.0)
                break
        else:
            key = (want.app, want.deployment)
            if key not in short:
                short[key] = Want(want.app, want.deployment, 0, want.bundle, want.why)
            short[key].count += 1
    return [w for w in short.values() if only is None or model_of(w.app) in only]


def describe(bundle: Bundle) -> str:
    """``0.5 CPU`` / ``1 CPU, 0.5 GPU`` (zero parts left out)."""
    parts = [f"{bundle['CPU']:g} CPU"] if bundle.get("CPU") else []
    if bundle.get("GPU"):
        parts.append(f"{bundle['GPU']:g} GPU")
    if bundle.get("memory"):
        parts.append(f"{bundle['memory'] / 2**30:.1f} GiB memory")
    return ", ".join(parts) or "no resources"


def free_text(nodes: list[Node], free: list[Bundle]) -> str:
    """What is free, per node, against each node's total: for error and status messages."""
    parts = []
    for node, f in zip(nodes, free, strict=True):
        cpu = f"{f['CPU']:g} CPU free of {node.total['CPU']:g}"
        gpu = f", {f['GPU']:g} GPU free of {node.total['GPU']:g}" if node.total["GPU"] else ""
        parts.append(f"{cpu}{gpu} on {node.address}{' (head)' if node.is_head else ''}")
    return "; ".join(parts) or "no alive node"


def admit(
    config: dict[str, Any],
    running: dict[str, Any],
    nodes: list[Node],
    apps: set[str],
    what: str,
    surge: bool = True,
) -> Plan:
    """Raise InsufficientResources (409) when ``config`` cannot be placed; else the plan."""
    result = plan(config, running, nodes, only=apps, surge=surge)
    if result.fits:
        return result
    short = result.unplaced or result.steady_short
    pool = result.wants if result.unplaced else _steady(config, running)
    asked_of = {(w.app, w.deployment): w.count for w in pool}
    asked = "; ".join(
        f"{asked_of.get((w.app, w.deployment), w.count)} x {describe(w.bundle)} for "
        f"{'/'.join(_named(w))} ({w.why}), {w.count} of them with no room"
        for w in short
    )
    raise InsufficientResources(
        f"{what}: not enough room on the cluster. It needs {asked}; "
        f"free now: {free_text(nodes, result.free)}. Nothing was changed and the running "
        "version keeps serving. Lower --num-cpus/--num-gpus or the replica count, undeploy "
        "something (`maas undeploy NAME`), or add a node to the Ray cluster.",
        asked=[
            {"app": app, "deployment": dep, "replicas": w.count, "each": w.bundle}
            for w in short
            for app, dep in [_named(w)]
        ],
        free=[
            {"node": n.address, "free": f, "total": n.total}
            for n, f in zip(nodes, result.free, strict=True)
        ],
    )


def _named(want: Want) -> tuple[str, str]:
    """(model, deployment) as users know them: a canary's or shadow's replicas are the
    model's ``Challenger``."""
    if is_challenger(want.app):
        return model_of(want.app), "Challenger"
    return want.app, want.deployment


def _steady(config: dict[str, Any], running: dict[str, Any]) -> list[Want]:
    wants = []
    for app in config.get("applications") or []:
        for dep in app.get("deployments") or []:
            live = ((running.get(app["name"]) or {}).get("deployments") or {}).get(dep["name"])
            wants.append(Want(app["name"], dep["name"], target_replicas(dep, live), {}, ""))
    return wants


def restore_order(
    config: dict[str, Any], running: dict[str, Any], nodes: list[Node]
) -> tuple[set[str], set[str], list[str]]:
    """Which apps of ``config`` fit, primaries first (the shared pool before all),
    then challengers. Returns (models left out, models to run without their canary or
    shadow, one note per thing left out)."""
    result = plan(config, running, nodes, surge=False)
    free = [dict(f) for f in result.free]
    wants: dict[str, list[Want]] = {}
    for want in result.wants:
        wants.setdefault(want.app, []).append(want)
    order = sorted(wants, key=lambda app: (app != SHARED_APP, is_challenger(app), app))
    left_out: set[str] = set()
    no_challenger: set[str] = set()
    notes: list[str] = []
    for app in order:  # primaries first: a challenger never keeps its primary out
        model = model_of(app)
        if model in left_out:
            continue
        trial = [dict(f) for f in free]
        if not first_fit(wants[app], trial, None, inplace=True):
            free = trial
            continue
        asked = "; ".join(f"{w.count} x {describe(w.bundle)}" for w in wants[app])
        where = free_text(nodes, free)
        if not is_challenger(app):
            left_out.add(model)
            notes.append(f"{model}: not started, no room for {asked} (free: {where})")
        else:
            no_challenger.add(model)
            notes.append(
                f"{model}: serving without its canary/shadow, no room for {asked} (free: {where})"
            )
    return left_out, no_challenger, notes
