"""Several nodes: two worker nodes join the test platform's head on this machine, each
on a loopback address of its own, in the environment every node of the platform gets
(Ray's token in it), one declaring a logical GPU. GPU replicas land only where a GPU
is free, CPU replicas spread, a key works on a replica of a worker node, a node without
the token cannot join, and a worker node killed under load has its replicas started
elsewhere while SDK clients see no failed request."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from maas_ray import MaaS, Settings
from maas_ray.control.nodes import node_env
from maas_ray.errors import MaasError
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import FIGURES, kill_session

pytestmark = pytest.mark.slow

# Ports of each worker node (the head's are the test platform's): node manager, object
# manager, dashboard agent (HTTP, gRPC), runtime env agent, metrics, worker range.
# Each node has an address of its own on the loopback interface, as machines would.
NODE_PORTS = {
    "cpu": ("127.0.0.2", 26101, 26102, 26103, 26104, 26105, 26106, "34000-34499"),
    "gpu": ("127.0.0.3", 26201, 26202, 26203, 26204, 26205, 26206, "34500-34999"),
    "rogue": ("127.0.0.4", 26301, 26302, 26303, 26304, 26305, 26306, "35000-35499"),
}


# A worker node as `ray start --address` makes one, in a process of its own (killing
# its session kills the node). `ray start` itself refuses to add a node to a head on
# loopback (the switch the platform turns off there, see security/ray_token.py), so the
# node is made as Ray's own `cluster_utils.Cluster` makes its nodes on one machine.
LAUNCH = """
import json, sys, time
import ray._private.node, ray._private.parameter
args = json.loads(sys.argv[1])
ray._private.node.Node(
    ray._private.parameter.RayParams(**args), head=False, shutdown_at_exit=False,
    spawn_reaper=False,
)
print("node up", flush=True)
while True:
    time.sleep(3600)
"""


def _start_node(live: Settings, name: str, gpus: int, log: Path, env: dict[str, str]) -> Any:
    ip, nm, om, agent, agent_grpc, runtime, metrics, workers = NODE_PORTS[name]
    low, high = workers.split("-")
    args = {
        "gcs_address": live.ray_address,
        "node_ip_address": ip,
        "num_cpus": 2,
        "num_gpus": gpus,
        "node_manager_port": nm,
        "object_manager_port": om,
        "dashboard_agent_listen_port": agent,
        "metrics_agent_port": agent_grpc,
        "runtime_env_agent_port": runtime,
        "metrics_export_port": metrics,
        "min_worker_port": int(low),
        "max_worker_port": int(high),
        "include_log_monitor": False,
    }
    cmd = [sys.executable, "-c", LAUNCH, json.dumps(args)]
    with log.open("ab") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _alive_nodes(client: MaaS) -> dict[str, Any]:
    return {n.node_id: n for n in client.cluster() if n.alive}


def _replicas(live: Settings, app: str) -> list[dict[str, Any]]:
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=30
    ).json()["applications"]
    return list(apps[app]["deployments"]["ModelServer"]["replicas"]) if app in apps else []


@pytest.fixture(scope="module")
def nodes(live: Settings, client: MaaS, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The head's GPU taken first (so a GPU replica can go only to the GPU worker), then
    the two workers; everything stopped by process id at the end."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant="n").fit([[0.0]], ["n"])
    for name in ("gpufill", "gpum", "spreadm"):
        client.register(name, model, input_example=[[0.0]])
    (head,) = [n for n in client.cluster() if n.is_head]
    free_gpu = round(head.gpu_total - head.gpu_used, 2)
    if free_gpu > 0:
        client.deploy("gpufill", "1", num_cpus=0.0, num_gpus=free_gpu)
    logs = tmp_path_factory.mktemp("nodes")
    procs = {}
    try:
        before = set(_alive_nodes(client))
        # One after the other: a node names its sockets in the session's folder by
        # counting those there, and two starting at once would pick the same name.
        for joined, (name, gpus) in enumerate((("cpu", 0), ("gpu", 1)), start=1):
            procs[name] = _start_node(live, name, gpus, logs / f"{name}.log", node_env(live))
            deadline = time.monotonic() + 90
            while len(set(_alive_nodes(client)) - before) < joined:
                assert time.monotonic() < deadline, (logs / f"{name}.log").read_text()[-2000:]
                time.sleep(0.5)
        joined = {n.node_id: n for n in _alive_nodes(client).values() if n.node_id not in before}
        gpu_node = next(i for i, n in joined.items() if n.gpu_total == 1)
        cpu_node = next(i for i in joined if i != gpu_node)
        yield {"procs": procs, "gpu": gpu_node, "cpu": cpu_node, "head": head.node_id, "logs": logs}
    finally:
        for name in ("gpum", "spreadm", "gpufill"):
            try:
                client.undeploy(name)
            except MaasError:
                pass
        for proc in procs.values():
            kill_session(proc.pid)


def test_a_node_without_the_token_is_refused(live: Settings, client: MaaS, nodes: Any) -> None:
    env = {k: v for k, v in node_env(live).items() if not k.startswith("RAY_AUTH")}
    # A refused node asks the GCS again each second, 20 times by default: each try is
    # refused for its token the same, so 3 (the test waited ~20 s for the 20).
    env["RAY_NUM_REDIS_GET_RETRIES"] = "3"
    count = len(_alive_nodes(client))
    log = nodes["logs"] / "rogue.log"
    proc = _start_node(live, "rogue", 0, log, env)
    try:
        code = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        code = None  # still trying to reach the GCS, which keeps refusing it
    finally:
        kill_session(proc.pid)
    text = log.read_text()
    assert "node up" not in text, text[-2000:]
    assert "AuthenticationError" in text, text[-2000:]  # the GCS refused it: no token
    assert code != 0
    assert len(_alive_nodes(client)) == count


def test_gpu_replicas_land_on_the_gpu_node_cpu_replicas_spread_and_keys_work_there(
    live: Settings, client: MaaS, nodes: Any
) -> None:
    client.deploy("gpum", "1", num_replicas=2, num_cpus=0.25, num_gpus=0.5)
    placed = {r["node_id"] for r in _replicas(live, "gpum")}
    assert placed == {nodes["gpu"]}, (placed, nodes)
    key = client.create_key(["predict:gpum"], name="nodes-bot").key
    answer = httpx.post(
        f"{live.serve_url}/v1/models/gpum/predict",
        json={"inputs": [[0.0]]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text  # checked by a replica of the GPU node
    client.undeploy("gpum")
    client.deploy("spreadm", "1", num_replicas=4, num_cpus=0.25)
    spread = {r["node_id"] for r in _replicas(live, "spreadm")}
    assert len(spread) >= 2, spread
    FIGURES.append(
        f"nodes: 2 GPU replicas on the GPU worker only; 4 CPU replicas over {len(spread)} nodes"
    )


def test_a_worker_node_killed_under_load_fails_no_sdk_request(
    live: Settings, client: MaaS, nodes: Any
) -> None:
    on_workers = [r for r in _replicas(live, "spreadm") if r["node_id"] != nodes["head"]]
    assert on_workers, "no replica on a worker node"
    victim = nodes["cpu"] if any(r["node_id"] == nodes["cpu"] for r in on_workers) else nodes["gpu"]
    lost = sum(1 for r in on_workers if r["node_id"] == victim)
    ok, failed = [0], []
    stop = threading.Event()

    def load() -> None:
        sdk = MaaS(live)
        try:
            while not stop.is_set():
                try:
                    sdk.predict("spreadm", [[0.0]])
                    ok[0] += 1
                except MaasError as exc:
                    failed.append(repr(exc))
                stop.wait(0.01)
        finally:
            sdk.close()

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        name = "cpu" if victim == nodes["cpu"] else "gpu"
        kill_session(nodes["procs"][name].pid)
        while True:
            now = _replicas(live, "spreadm")
            running = [r for r in now if r["state"] == "RUNNING"]
            if len(running) == 4 and all(r["node_id"] != victim for r in running):
                break
            assert time.monotonic() - started < 120, now
            time.sleep(0.5)
        took = time.monotonic() - started
        time.sleep(1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert failed == [], failed[:5]
    FIGURES.append(
        f"nodes: a worker node SIGKILLed with {lost} of 4 replicas; all 4 running elsewhere "
        f"{took:.1f} s later; {ok[0]} SDK predicts meanwhile, 0 failed"
    )
