"""Admission planning: what a change needs placed against what the nodes have free."""

from __future__ import annotations

from typing import Any

import pytest

from maas_ray.control import capacity, room
from maas_ray.control.applications import (
    application,
    applications,
    serve_config,
    shared_application,
)
from maas_ray.errors import InsufficientResources
from maas_ray.spec import DeploymentSpec

HEAD = "n1"


def _nodes(cpu_total: float, cpu_used: float, gpu_total: float = 0.0) -> list[capacity.Node]:
    return [
        capacity.Node(
            node_id=HEAD,
            address="127.0.0.1",
            is_head=True,
            total={"CPU": cpu_total, "GPU": gpu_total, "memory": 8e9},
            used={"CPU": cpu_used, "GPU": 0.0, "memory": 0.0},
        )
    ]


def _config(*specs: DeploymentSpec, version: str = "1") -> dict[str, Any]:
    apps = [a for s in specs for a in applications(s, version, "http://mlflow")]
    apps.append(shared_application("http://mlflow", 1, 0.0))
    return serve_config(apps, "127.0.0.1", 8000, "http://mlflow")


def _running(config: dict[str, Any], placed: dict[str, int] | None = None) -> dict[str, Any]:
    """Serve's view of ``config`` running: every replica placed on the head node."""
    apps = {}
    for app in config["applications"]:
        deployments = {}
        for dep in app.get("deployments") or []:
            n = (placed or {}).get(app["name"], dep.get("num_replicas") or 1)
            opts = dep.get("ray_actor_options") or {}
            deployments[dep["name"]] = {
                "deployment_config": {"ray_actor_options": opts},
                "target_num_replicas": n,
                "required_resources": {
                    "CPU": opts.get("num_cpus", 1.0),
                    "GPU": opts.get("num_gpus", 0.0),
                },
                "replicas": [{"state": "RUNNING", "node_id": HEAD} for _ in range(n)],
            }
        apps[app["name"]] = {
            "status": "RUNNING",
            "deployed_app_config": {"args": app.get("args"), "import_path": app["import_path"]},
            "deployments": deployments,
        }
    return apps


def _with_canary(spec: DeploymentSpec) -> DeploymentSpec:
    return DeploymentSpec.model_validate(
        {**spec.model_dump(exclude_none=True), "canary": {"version": "2", "percent": 20}}
    )


EXAMPLES = [DeploymentSpec(model=m, num_cpus=0.5) for m in ("a", "b", "c", "d")]


def test_a_canary_on_a_full_cluster_is_refused_naming_what_and_where() -> None:
    now = _config(*EXAMPLES)
    running = _running(now)
    canary = _with_canary(EXAMPLES[0])
    after = _config(canary, *EXAMPLES[1:])
    with pytest.raises(InsufficientResources) as caught:
        capacity.admit(after, running, _nodes(2.0, 2.0), {"a"}, "canary of a v2")
    err = caught.value
    assert err.status_code == 409
    assert err.code == "insufficient_resources"
    assert "0.5 CPU" in err.message
    assert "0 CPU free of 2" in err.message
    assert "undeploy" in err.message
    assert "add a node" in err.message
    asked = {(d["app"], d["deployment"]): d["replicas"] for d in err.asked}
    # only the challenger: the primary's replicas take the split by reconfigure
    assert asked == {("a", "Challenger"): 1}
    assert "a/Challenger" in err.message
    assert err.to_dict()["free"][0]["free"]["CPU"] == 0


def test_a_canary_fits_where_its_challenger_fits() -> None:
    running = _running(_config(*EXAMPLES))
    canary = _with_canary(EXAMPLES[0])
    after = _config(canary, *EXAMPLES[1:])
    plan = capacity.admit(after, running, _nodes(2.5, 2.0), {"a"}, "canary")
    assert [(w.app, w.deployment, w.count) for w in plan.wants] == [
        ("a~challenger", "ModelServer", 1)
    ]
    with pytest.raises(InsufficientResources):
        capacity.admit(after, running, _nodes(2.5, 2.1), {"a"}, "canary")


def test_scaling_out_needs_only_the_added_replicas_no_surge() -> None:
    running = _running(_config(*EXAMPLES))
    two = EXAMPLES[1].model_copy(update={"num_replicas": 2})
    after = _config(EXAMPLES[0], two, *EXAMPLES[2:])
    plan = capacity.admit(after, running, _nodes(2.5, 2.0), {"b"}, "scale")
    assert [(w.deployment, w.count) for w in plan.wants] == [("ModelServer", 1)]
    twelve = EXAMPLES[1].model_copy(update={"num_replicas": 12})
    with pytest.raises(InsufficientResources, match="11 x 0.5 CPU"):
        capacity.admit(
            _config(EXAMPLES[0], twelve, *EXAMPLES[2:]), running, _nodes(4, 2), {"b"}, "x"
        )


def test_ending_a_canary_credits_the_challenger_it_stops() -> None:
    canary = _with_canary(EXAMPLES[0])
    running = _running(_config(canary, *EXAMPLES[1:]))
    # full: promoting the canary's version needs a surge replica of the primary,
    # which fits only in what the challenger gives back
    promoted = _config(*EXAMPLES[1:], version="1")
    promoted["applications"] += applications(EXAMPLES[0], "2", "http://mlflow")
    plan = capacity.admit(promoted, running, _nodes(2.5, 2.5), {"a"}, "promote")
    assert [(w.app, w.count) for w in plan.wants] == [("a", 1)]


def test_gpu_replicas_count_logical_gpus() -> None:
    gpu = DeploymentSpec(model="g", num_cpus=0.5, num_gpus=0.5, num_replicas=2)
    capacity.admit(_config(gpu), {}, _nodes(4, 0, gpu_total=1), {"g"}, "deploy")
    three = gpu.model_copy(update={"num_replicas": 3})
    with pytest.raises(InsufficientResources, match="0.5 GPU"):
        capacity.admit(_config(three), {}, _nodes(4, 0, gpu_total=1), {"g"}, "deploy")


def test_others_waiting_replicas_are_counted_but_not_blamed() -> None:
    now = _config(*EXAMPLES)
    running = _running(now)
    running["b"]["deployments"]["ModelServer"]["replicas"][0]["node_id"] = ""  # pending
    new = DeploymentSpec(model="e", num_cpus=0.5)
    with pytest.raises(InsufficientResources) as caught:
        capacity.admit(_config(*EXAMPLES, new), running, _nodes(2.25, 1.5), {"e"}, "deploy")
    assert [d["app"] for d in caught.value.asked] == ["e"]


def test_restore_places_primaries_before_challengers_and_names_what_is_left_out() -> None:
    canary = _with_canary(EXAMPLES[0])
    config = _config(canary, *EXAMPLES[1:])
    left_out, no_challenger, notes = capacity.restore_order(config, {}, _nodes(2.0, 0.0))
    assert left_out == set()
    assert no_challenger == {"a"}
    assert len(notes) == 1
    assert notes[0].startswith("a: serving without its canary")
    left_out, _, notes = capacity.restore_order(config, {}, _nodes(1.2, 0.0))
    assert left_out == {"c", "d"}, notes  # a and b first, by name


def test_an_autoscaling_maximum_beyond_capacity_is_a_warning() -> None:
    auto = DeploymentSpec(model="s", num_cpus=0.5, min_replicas=1, max_replicas=8)
    config = _config(auto)
    running = _running(config)
    warnings = room.autoscaling_warnings(config, running, _nodes(2.0, 0.5), "s")
    assert len(warnings) == 1
    assert "max_replicas 8" in warnings[0]
    assert "room for 4 replicas" in warnings[0]
    assert room.autoscaling_warnings(config, running, _nodes(8.0, 0.5), "s") == []


def test_a_pending_replica_says_what_it_waits_for() -> None:
    config = _config(DeploymentSpec(model="t", num_cpus=0.5, num_replicas=2))
    running = _running(config)
    running["t"]["deployments"]["ModelServer"]["replicas"].append(
        {"state": "STARTING", "node_id": ""}
    )
    (line,) = room.pending_reasons(running["t"], _nodes(2.0, 2.0))
    assert line.startswith("1 ModelServer replica waiting for 0.5 CPU")
    assert "0 CPU free of 2" in line


def test_changing_only_the_split_replaces_nothing() -> None:
    canary = _with_canary(EXAMPLES[0])
    running = _running(_config(canary, *EXAMPLES[1:]))
    quiet = DeploymentSpec.model_validate(
        {**canary.model_dump(exclude_none=True), "canary": {"version": "2", "percent": 0}}
    )
    plan = capacity.admit(_config(quiet, *EXAMPLES[1:]), running, _nodes(2.5, 2.5), {"a"}, "x")
    assert plan.wants == []
    in_place = application(EXAMPLES[0], "2", "http://mlflow", surge=False)
    config = _config(*EXAMPLES[1:])
    config["applications"].insert(1, in_place)
    capacity.admit(config, running, _nodes(2.5, 2.5), {"a"}, "full: replaced in place")
