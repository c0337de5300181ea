"""Deploying: autoscaling, fractional GPUs, status, failed deploys that keep the old version."""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

import httpx
import mlflow
import pytest
from ray.util.state import list_actors

from maas_ray import MaaS, Settings
from maas_ray.control import workers
from maas_ray.control.deployer import ControlPlane
from maas_ray.errors import MaasError
from maas_ray.registry import Registry
from maas_ray.registry._convert import TAG_STARTING
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import FIGURES, auth, maas, post


class Broken(mlflow.pyfunc.PythonModel):
    """Loads fine into the registry, fails when a replica loads it."""

    def load_context(self, context: Any) -> None:
        raise RuntimeError("weights are corrupt: boom-4711")

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return model_input


class Leisurely(mlflow.pyfunc.PythonModel):
    """Answers each call after 0.1 s: its requests stay in flight but take no CPU."""

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        time.sleep(0.1)
        return [1] * len(model_input)


class SlowToLoad(mlflow.pyfunc.PythonModel):
    """A fitted classifier that takes LOAD_S to load, as a model with large weights does."""

    LOAD_S = 4.0

    def __init__(self, fitted: Any) -> None:
        self.fitted = fitted

    def load_context(self, context: Any) -> None:
        time.sleep(self.LOAD_S)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
        return self.fitted.predict(model_input)


def _replica_actors(settings: Settings, app: str) -> list[Any]:
    return [
        a
        for a in list_actors(address=settings.dashboard_url, detail=True, limit=1000)
        if a.class_name.startswith(f"ServeReplica:{app}:") and a.state == "ALIVE"
    ]


def test_autoscaling_and_fractional_gpu_reach_serve(iris: dict[str, Any], live: Settings) -> None:
    status = iris["status"]
    assert status.health == "RUNNING"
    assert status.replicas_spec == "1-2"
    assert status.num_gpus == 0.5
    assert status.num_cpus == 0.5
    app = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=10
    ).json()
    dep = app["applications"]["iris"]["deployed_app_config"]["deployments"][0]
    assert dep["ray_actor_options"] == {"num_cpus": 0.5, "num_gpus": 0.5}
    assert dep["autoscaling_config"]["min_replicas"] == 1
    assert dep["autoscaling_config"]["max_replicas"] == 2
    actors = _replica_actors(live, "iris")
    assert actors
    for actor in actors:
        assert actor.required_resources.get("GPU") == 0.5, actor.required_resources
        assert actor.required_resources.get("CPU") == 0.5, actor.required_resources


def test_spec_is_stored_in_the_registry(registry: Registry, iris: dict[str, Any]) -> None:
    spec = registry.get_spec("iris")
    assert spec is not None
    assert spec["version"] == iris["version"].version
    assert (spec["min_replicas"], spec["max_replicas"], spec["num_gpus"]) == (1, 2, 0.5)


def test_status_table(iris: dict[str, Any], env: dict[str, str]) -> None:
    out = maas(env, "status").stdout
    row = next(line for line in out.splitlines() if line.split()[:1] == ["iris"])
    for cell in (iris["version"].version, "1/1 (1-2)", "0.5", "RUNNING", "/v1/models/iris/predict"):
        assert cell in row, (cell, row)


def test_autoscaling_starts_a_second_replica_under_load(
    client: MaaS, control: ControlPlane, live: Settings
) -> None:
    """A model deployed 1-2 replicas (4 in-flight requests each as the target, 2 s
    above it to scale up): 16 concurrent clients push it past the target, and Serve
    starts a second replica that runs. Its own model, so iris keeps the GPU room its
    tests below need; one that takes its time, so the load is requests in flight, not
    CPU taken from the replica starting."""
    import cloudpickle
    import pandas as pd

    from tests.integration.test_lifecycle import Load

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    client.register("scaler", Leisurely(), input_example=pd.DataFrame({"x": [0.0]}))
    client.deploy("scaler", min_replicas=1, max_replicas=2, num_cpus=0.5, upscale_delay_s=2)
    try:
        started = time.monotonic()
        body = {"dataframe_records": [{"x": 0.0}]}
        with Load(live, "scaler", threads=16, body=body) as load:
            deadline = started + 120  # upscale delay (2 s) + a replica's start (10-14 s)
            while control.status_of("scaler").replicas_running < 2:
                assert time.monotonic() < deadline, control.status_of("scaler")
                time.sleep(0.5)
            took = time.monotonic() - started
        assert len(_replica_actors(live, "scaler")) == 2
        assert load.failures() == {}, load.seen
    finally:
        client.undeploy("scaler")
    FIGURES.append(
        f"autoscaling: 1 -> 2 replicas {took:.0f} s into a 16-client load, "
        f"{load.answered()} requests, 0 failed"
    )


def test_failed_deploy_shows_the_real_error_and_keeps_the_old_version(
    client: MaaS, registry: Registry, control: ControlPlane, iris: dict[str, Any], live: Settings
) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    bad = client.register("iris", Broken(), input_example=iris["X"].head(2))
    good = iris["version"].version
    row = iris["X"].head(1).to_dict(orient="records")
    answers: list[tuple[int, str | None]] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            r = post(live, "/v1/models/iris/predict", {"dataframe_records": row})
            answers.append((r.status_code, r.headers.get("x-maas-model-version")))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with pytest.raises(MaasError) as info:
            client.deploy("iris", bad.version, min_replicas=1, max_replicas=2, num_gpus=0.5)
    finally:
        stop.set()
        poller.join()
    # The replica's own error leads (Serve's traceback follows it).
    assert info.value.message.splitlines()[0].endswith(
        "failed: RuntimeError: weights are corrupt: boom-4711"
    ), info.value.message[:300]
    assert registry.get_spec("iris")["version"] == good  # type: ignore[index]
    final = control.status_of("iris")
    assert final.version == good
    assert answers
    assert set(answers) == {(200, good)}, sorted(set(answers))
    resp = post(live, "/v1/models/iris/predict", {"dataframe_records": row})
    assert resp.status_code == 200
    assert resp.headers["x-maas-model-version"] == good


def test_a_first_deploy_answers_from_the_warm_pool_until_its_replicas_run(
    client: MaaS, registry: Registry, live: Settings
) -> None:
    import cloudpickle
    from sklearn.datasets import load_wine
    from sklearn.linear_model import LogisticRegression

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    X, y = load_wine(return_X_y=True)
    X = X.astype("float32")
    fitted = LogisticRegression(max_iter=2000).fit(X, y)
    v = client.register("warmstart", SlowToLoad(fitted), input_example=X[:2]).version
    body = {"inputs": X[:3].tolist()}
    assert post(live, "/v1/models/warmstart/predict", body).status_code == 404  # not deployed
    deploying = threading.Thread(target=lambda: client.deploy("warmstart", v))
    deploying.start()
    pooled: list[Any] = []
    # The pool answers from when the spec is stored until the model's own application
    # holds the route (Serve builds it first, a second or more): ask as soon as the
    # spec is there, over one client's connections, not to miss that window.
    deadline = time.monotonic() + 60
    while registry.get_spec("warmstart") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        with httpx.Client(headers=auth(live), timeout=60) as http:
            while deploying.is_alive():
                r = http.post(f"{live.serve_url}/v1/models/warmstart/predict", json=body)
                if r.status_code == 200 and r.headers.get("x-maas-served-by") == "shared-pool":
                    pooled.append(r)
                else:  # starting: not yet in the registry, or the app's route took over
                    assert r.status_code in (200, 404), r.text
    finally:
        deploying.join()
    assert pooled, "no answer came from the pool while the replicas started"
    assert {r.headers["x-maas-model-version"] for r in pooled} == {v}
    # The first deploy's mark is gone: from now on held requests wait for its replicas.
    assert TAG_STARTING not in registry.client.get_registered_model("warmstart").tags
    own = post(live, "/v1/models/warmstart/predict", body)
    assert own.status_code == 200
    assert "x-maas-served-by" not in own.headers  # the model's own replica now
    assert own.json() == pooled[0].json()
    assert post(live, "/v1/models/warmstart/predict", {"inputs": [[1.0]]}).status_code == 422
    FIGURES.append(f"warm pool: {len(pooled)} answers while the first deploy started")
    client.undeploy("warmstart")
    gone = post(live, "/v1/models/warmstart/predict", body)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_deployed"


def test_a_first_deploy_that_cannot_load_is_a_503_from_the_pool_never_a_500(
    client: MaaS, registry: Registry, iris: dict[str, Any], live: Settings
) -> None:
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    bad = client.register("brokenfirst", Broken(), input_example=iris["X"].head(2)).version
    row = iris["X"].head(1).to_dict(orient="records")
    seen: list[tuple[int, str]] = []
    held: list[float] = []  # how long each request answered 504 waited for it
    unanswered: list[float] = []  # when, into the deploy, a request got no answer
    stop = threading.Event()
    url = f"{live.serve_url}/v1/models/brokenfirst/predict"
    started = time.monotonic()
    # The pool answers for the model from when its spec is stored (through the gateway,
    # then through Serve's fallback proxy once the model's application holds the route:
    # serving/fallback.py), and cannot load it either: a 503 that says why. Were the
    # pool not to answer in time, a request waits for a replica that never starts at
    # most the predict limit, then a JSON 504. Longer than that is a hang.
    limit = live.predict_timeout_s + 15

    def poll() -> None:
        deadline = time.monotonic() + 60
        while registry.get_spec("brokenfirst") is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with httpx.Client(headers=auth(live), timeout=limit) as http:
            while not stop.is_set():
                sent = time.monotonic() - started
                try:
                    r = http.post(url, json={"dataframe_records": row})
                    seen.append((r.status_code, r.json().get("code", "")))
                    if r.status_code == 504:
                        held.append(time.monotonic() - started - sent)
                except httpx.TimeoutException:
                    unanswered.append(sent)
                stop.wait(0.2)  # each try makes the pool load the broken version: paced

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        with pytest.raises(MaasError) as info:
            client.deploy("brokenfirst", bad)
    finally:
        stop.set()
        poller.join()
    assert "boom-4711" in info.value.message
    assert seen
    assert unanswered == []
    assert set(seen) <= {
        (404, "not_deployed"),
        (503, "platform_unavailable"),
        (504, "predict_timeout"),
    }, sorted(set(seen))
    assert (503, "platform_unavailable") in seen  # the pool tried, said why
    assert all(t < live.predict_timeout_s + 5 for t in held), held
    FIGURES.append(
        f"broken first deploy: {len(seen)} answers {sorted(set(seen))}; answered 504 after "
        + (", ".join(f"{t:.1f}" for t in held) or "-")
        + f" s (limit {live.predict_timeout_s:g} s)"
    )
    assert registry.get_spec("brokenfirst") is None
    assert TAG_STARTING not in registry.client.get_registered_model("brokenfirst").tags
    # The pool stops answering for it (it read the registry at most 0.5 s before) and
    # Serve removes the route: then a 404.
    deadline = time.monotonic() + 10
    path = "/v1/models/brokenfirst/predict"
    while (gone := post(live, path, {"dataframe_records": row})).status_code != 404:
        assert gone.status_code == 503, gone.text
        assert time.monotonic() < deadline, gone.text
        time.sleep(0.2)


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("deploy", "nope"), 1, "not found"),
        (("deploy", "iris", "--version", "99"), 1, "99"),
        (("deploy", "iris", "--min-replicas", "3", "--max-replicas", "1"), 2, "min_replicas"),
        (("deploy", "iris", "--version", "1", "--alias", "x"), 2, "alias"),
        (("deploy", "iris", "--num-gpus", "-1"), 2, "--num-gpus: got -1.0"),
        (("deploy", "iris", "--max-batch-size", "0"), 2, "--max-batch-size: got 0"),
        (("deploy", "iris", "--max-batch-size", "4", "--batch-wait-ms", "5000"), 2, "at most 1000"),
        (("deploy", "iris", "--predict-timeout", "0"), 2, "--predict-timeout: got 0.0"),
        (("deploy", "iris", "--max-queued", "0"), 2, "--max-queued: got 0"),
        (("undeploy", "nope"), 1, "nope"),
    ],
)
def test_bad_deploy_commands_change_nothing(
    args: tuple[str, ...],
    code: int,
    words: str,
    registry: Registry,
    iris: dict[str, Any],
    env: dict[str, str],
) -> None:
    before = registry.get_spec("iris")
    proc = maas(env, *args, check=False)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert registry.get_spec("iris") == before


def test_deploy_by_alias(
    registry: Registry, iris: dict[str, Any], env: dict[str, str], live: Settings
) -> None:
    good = iris["version"].version
    registry.client.set_registered_model_alias("iris", "champion", good)
    out = maas(
        env,
        "deploy",
        "iris",
        "--alias",
        "champion",
        "--num-replicas",
        "1",
        "--max-batch-size",
        "8",
        "--batch-wait-ms",
        "2",
    ).stdout
    assert f"iris version {good} is RUNNING" in out
    spec = registry.get_spec("iris")
    assert spec is not None
    assert spec["alias"] == "champion"
    assert spec["batching"] == {"max_batch_size": 8, "batch_wait_timeout_s": 0.002}
    status = maas(env, "status").stdout
    assert f"@champion -> v{good}" in status
    resp = post(
        live,
        "/v1/models/iris/predict",
        {"dataframe_records": iris["X"].head(1).to_dict(orient="records")},
    )
    assert resp.status_code == 200
    assert resp.headers["x-maas-model-version"] == good


def _reserved(live: Settings) -> set[int]:
    """The head's idle workers that never ran anything (serving/reserve.py)."""
    import grpc
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    metadata = tuple(dashboard_headers(live).items())
    with grpc.insecure_channel(f"{live.host}:{live.ray_node_manager_port}") as channel:
        stats = node_manager_pb2_grpc.NodeManagerServiceStub(channel).GetNodeStats(
            node_manager_pb2.GetNodeStatsRequest(), metadata=metadata, timeout=30
        )
    return {
        w.pid
        for w in stats.core_workers_stats
        if w.worker_type == common_pb2.WORKER and workers.fresh_worker(w)
    }


def _replica_pids(live: Settings, app: str) -> set[int]:
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=30
    ).json()["applications"]
    return {r["pid"] for d in apps[app]["deployments"].values() for r in d["replicas"]}


def _until_reserved(live: Settings) -> set[int]:
    deadline = time.monotonic() + 60
    while not (found := _reserved(live)):
        assert time.monotonic() < deadline, "no idle worker in reserve within 60 s"
        time.sleep(0.5)
    return found


def test_a_new_replica_starts_in_a_worker_kept_in_reserve(client: MaaS, live: Settings) -> None:
    """A started replica keeps idle workers on its node (Settings.worker_reserve): the
    next replica starts in one of them, not in a new process, and the node's reserve
    is filled again."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant="r").fit([[0.0]], ["r"])
    version = client.register("reserved", model, input_example=[[0.0]]).version
    waiting = _until_reserved(live)
    try:
        client.deploy("reserved", version, num_cpus=0.25)
        pids = _replica_pids(live, "reserved")
        assert pids, "no replica"
        assert pids <= waiting, (pids, waiting)
        assert _until_reserved(live).isdisjoint(pids)
    finally:
        client.undeploy("reserved")
