"""Capacity: actions that need replicas the cluster cannot place answer 409 at once and
change nothing; a tight cluster still runs canary/rollback cycles; failures put back
exactly what ran before, with the old version answering throughout."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import mlflow
import pytest

from maas_ray import MaaS, Settings
from maas_ray.errors import RemoteError
from maas_ray.registry import Registry
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import FIGURES, auth, maas
from tests.integration.test_deploy import Broken
from tests.integration.test_lifecycle import Load
from tests.integration.test_security import _artifact_dir

CPU = 0.5  # what each example reserves on `make up`'s platform
SLOW_TIMEOUT_S = 8  # `maas deploy --timeout` for the version that loads for minutes
# The load beside each action: three clients, each pausing this long between requests
# (about 45 requests/s in all, a gap of ~20 ms), so the replicas being started keep
# their CPU: at 100 requests/s the clients and the answers took a third of a core.
PAUSE_S = 0.06


class SlowToLoad(mlflow.pyfunc.PythonModel):
    """Registers at once; a replica loading it takes minutes (a deploy that times out)."""

    def load_context(self, context: Any) -> None:
        from ray import serve

        try:
            serve.get_replica_context()
        except Exception:
            return  # MLflow's own check while registering: load at once
        time.sleep(600)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return ["slow"] * len(model_input)


@pytest.fixture(scope="module")
def cap(client: MaaS, seeded: Any) -> Iterator[dict[str, str]]:
    """A model whose answer names its version: v1 serving, v2 a good challenger,
    v3 fails to load, v4 has artifacts changed after registration, v5 loads for
    minutes."""
    from sklearn.dummy import DummyClassifier

    versions = {}
    for label in ("v1", "v2"):
        model = DummyClassifier(strategy="constant", constant=label).fit([[0.0]], [label])
        versions[label] = client.register("capm", model, input_example=[[0.0]]).version
    import pandas as pd

    versions["broken"] = client.register(
        "capm", Broken(), input_example=pd.DataFrame({"x": [0.0]})
    ).version
    good = DummyClassifier(strategy="constant", constant="v4").fit([[0.0]], ["v4"])
    versions["tampered"] = client.register("capm", good, input_example=[[0.0]]).version
    versions["slow"] = client.register(
        "capm", SlowToLoad(), input_example=pd.DataFrame({"x": [0.0]})
    ).version
    client.promote("capm", versions["v1"])
    client.deploy("capm", alias="production", num_cpus=CPU)
    yield versions
    client.undeploy("capm")


def _free_cpu(client: MaaS) -> float:
    return sum(n.cpu_total - n.cpu_used for n in client.cluster())


def _settled_free_cpu(client: MaaS, live: Settings) -> float:
    """Free CPUs once no replica is starting or stopping (Ray frees a stopped replica's
    CPUs a moment after Serve forgets it) and two readings a second apart agree."""
    deadline = time.monotonic() + 90
    last = -1.0
    while time.monotonic() < deadline:
        apps = httpx.get(
            f"{live.dashboard_url}/api/serve/applications/",
            headers=dashboard_headers(live),
            timeout=30,
        ).json()
        moving = [
            r
            for app in apps["applications"].values()
            for dep in app["deployments"].values()
            for r in dep["replicas"]
            if r["state"] != "RUNNING"
        ]
        free = round(_free_cpu(client), 2)
        if not moving and free == last:
            return free
        last = free
        time.sleep(1)
    raise AssertionError(f"the cluster did not settle within 90 s (free CPU {last})")


@pytest.fixture
def filler(client: MaaS, live: Settings) -> Iterator[Any]:
    """Fill the cluster's free CPUs but ``leave``: a model whose replica reserves them."""
    from sklearn.dummy import DummyClassifier

    if not any(m.name == "filler" for m in client.models()):
        model = DummyClassifier(strategy="constant", constant=0).fit([[0.0]], [0])
        client.register("filler", model, input_example=[[0.0]])

    def fill(leave: float) -> float:
        deadline = time.monotonic() + 60
        while True:
            take = round(_settled_free_cpu(client, live) - leave, 2)
            assert take > 0, f"the session platform has less than {leave} CPU free"
            try:
                client.deploy("filler", num_cpus=take)
                return take
            except RemoteError as exc:  # a replica was still stopping: measure again
                if exc.remote_code != "insufficient_resources" or time.monotonic() > deadline:
                    raise

    yield fill
    if any(r.model == "filler" for r in client.status()):
        client.undeploy("filler")


def _serve_app(live: Settings, name: str) -> dict[str, Any]:
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=30
    ).json()
    app = apps["applications"][name]
    deps = app["deployments"]
    return {
        "config": app["deployed_app_config"],
        "targets": {d: deps[d]["target_num_replicas"] for d in deps},
        "apps": sorted(apps["applications"]),
    }


def _snapshot(client: MaaS, registry: Registry, live: Settings) -> tuple[Any, ...]:
    model = client.model("capm")
    return (registry.get_spec("capm"), model.aliases, _serve_app(live, "capm"))


def test_a_full_cluster_refuses_canary_shadow_and_scale_out_at_once(
    cap: dict[str, str],
    client: MaaS,
    registry: Registry,
    live: Settings,
    env: dict[str, str],
    filler: Any,
) -> None:
    filler(0.0)
    before = _snapshot(client, registry, live)
    asks = [
        ("canary", "capm", "--version", cap["v2"], "--percent", "20"),
        ("shadow", "capm", "--version", cap["v2"]),
        ("deploy", "capm", "--num-replicas", "2"),
        ("deploy", "capm", "--num-gpus", "1"),  # a logical GPU: iris holds half of it
    ]
    took = []
    with Load(live, "capm", pause_s=PAUSE_S) as load:
        for args in asks:
            start = time.monotonic()
            proc = maas(env, *args, check=False)
            took.append(time.monotonic() - start)
            assert proc.returncode == 1, (args, proc.stdout)
            assert "not enough room on the cluster" in proc.stderr, proc.stderr
            assert "free now:" in proc.stderr
            assert "Nothing was changed" in proc.stderr
        resp = httpx.post(
            f"{live.serve_url}/v1/admin/models/capm/canary",
            json={"version": cap["v2"], "percent": 20},
            headers=auth(live),
            timeout=30,
        )
    assert resp.status_code == 409
    body = resp.json()
    assert body["code"] == "insufficient_resources"
    # only the challenger: the primary takes the split in place, with no new replica
    assert [(a["app"], a["deployment"]) for a in body["asked"]] == [("capm", "Challenger")]
    assert body["free"][0]["total"]["CPU"] == live.ray_num_cpus
    assert "GPU free of 1" in maas(env, "deploy", "capm", "--num-gpus", "1", check=False).stderr
    assert _snapshot(client, registry, live) == before
    assert load.failures() == {}, load.seen
    # the CLI's own start-up (~1 s here) included; the platform answers in well under it
    assert max(took) < 5, took
    times = ", ".join(f"{t:.1f}" for t in took)
    FIGURES.append(
        f"full cluster: canary/shadow/scale-out/GPU refused in {times} s from the CLI; "
        f"{sum(load.seen.values())} requests meanwhile, 0 failed"
    )


def test_a_cluster_sized_like_make_up_runs_canary_cycles_and_a_second_replica(
    cap: dict[str, str], client: MaaS, live: Settings, env: dict[str, str], filler: Any
) -> None:
    # What `make up` leaves on 2 cores: room for one canary with its surge replica.
    filler(2 * CPU)
    cycles = 2  # each ~11-20 s; benchmarks/soak.py runs version switches for 10 minutes
    took = []
    with Load(live, "capm", pause_s=PAUSE_S) as load:
        for _ in range(cycles):
            start = time.monotonic()
            out = maas(env, "canary", "capm", "--version", cap["v2"], "--percent", "20").stdout
            assert "20% (canary)" in out
            out = maas(env, "rollback", "capm").stdout
            assert "v1 100%" in out
            took.append(time.monotonic() - start)
        out = maas(env, "deploy", "capm", "--num-replicas", "2").stdout
        assert f"capm version {cap['v1']} is RUNNING (2/2 replicas)" in out
        maas(env, "deploy", "capm", "--num-replicas", "1")
    assert load.failures() == {}, load.seen
    status = maas(env, "status", "-o", "json").stdout
    assert '"cluster"' in status
    FIGURES.append(
        f"tight cluster: {cycles} canary/rollback cycles from the CLI (each "
        f"{min(took):.1f}-{max(took):.1f} s, median {sorted(took)[cycles // 2]:.1f} s) "
        f"and a 2nd replica, {sum(load.seen.values())} requests, 0 failed"
    )


def test_an_autoscaling_maximum_beyond_capacity_is_accepted_with_a_warning(
    cap: dict[str, str], client: MaaS, env: dict[str, str]
) -> None:
    proc = maas(env, "deploy", "capm", "--min-replicas", "1", "--max-replicas", "40")
    assert "is RUNNING" in proc.stdout
    assert "max_replicas 40 x 0.5 CPU does not fit" in proc.stderr.replace("\n", " ")
    assert "autoscaling stops there" in maas(env, "status").stderr.replace("\n", " ")
    row = client.deploy("capm", num_replicas=1)
    assert row.warnings == []


@pytest.mark.parametrize("kind", ["broken", "tampered", "slow"])
def test_a_failed_deploy_puts_back_what_ran_and_the_old_version_answers_throughout(
    cap: dict[str, str],
    client: MaaS,
    registry: Registry,
    live: Settings,
    env: dict[str, str],
    kind: str,
) -> None:
    if kind == "tampered":
        folder = _artifact_dir(registry, live, "capm", cap["tampered"])
        victim = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
        victim.write_bytes(victim.read_bytes() + b"\0")  # one byte more than registered
    before = _snapshot(client, registry, live)
    timeout = ["--timeout", str(SLOW_TIMEOUT_S)] if kind == "slow" else []
    with Load(live, "capm", pause_s=PAUSE_S) as load:
        proc = maas(env, "deploy", "capm", "--version", cap[kind], *timeout, check=False)
        load.more(100)  # the old version must keep answering right after the refusal too
    assert proc.returncode == 1, proc.stdout
    if kind == "slow":
        assert f"timed out after {SLOW_TIMEOUT_S}s" in proc.stderr, proc.stderr
    assert _snapshot(client, registry, live) == before
    assert load.failures() == {}, load.seen
    assert set(v for _, v in load.seen) == {cap["v1"]}, load.seen
    FIGURES.append(f"{kind} deploy refused: {sum(load.seen.values())} requests to v1, 0 failed")
