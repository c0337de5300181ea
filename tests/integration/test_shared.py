"""Shared mode: many small models on one multiplexed pool with an LRU per replica."""

from __future__ import annotations

import time

import httpx
import pytest

from maas_ray import MaaS, Settings
from maas_ray.security.ray_token import dashboard_headers
from tests.conftest import auth, maas

N_MODELS = 6  # twice the session's LRU bound (shared_models_per_replica=3)


@pytest.fixture(scope="module")
def pool(client: MaaS) -> list[str]:
    from sklearn.dummy import DummyClassifier

    names = [f"small-{i}" for i in range(N_MODELS)]
    for name in names:
        model = DummyClassifier(strategy="constant", constant=name).fit([[0.0]], [name])
        client.register(name, model, input_example=[[0.0]])
        client.promote(name, "1")
    result = client.apply(
        {
            "kind": "MaasDeployments",
            "models": [{"model": n, "alias": "production", "mode": "shared"} for n in names],
        }
    )
    assert set(result.values()) == {"created"}
    return names


def _ask(settings: Settings, name: str) -> httpx.Response:
    return httpx.post(
        f"{settings.serve_url}/v1/models/{name}/predict",
        json={"inputs": [[0.0]]},
        headers=auth(settings),
        timeout=60,
    )


def test_every_shared_model_answers_past_the_lru_bound(pool: list[str], live: Settings) -> None:
    for _ in range(2):  # the second round reloads what the LRU evicted
        for name in pool:
            r = _ask(live, name)
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": [name]}
            assert r.headers["x-maas-model-version"] == "1"
    apps = httpx.get(
        f"{live.dashboard_url}/api/serve/applications/", headers=dashboard_headers(live), timeout=10
    ).json()
    assert "maas-shared" in apps["applications"]
    assert not set(pool) & set(apps["applications"])  # no application per shared model
    # The LRU did evict: the pool replica's own log (read through Ray's log API) names
    # the versions it unloaded to make room for the next ones.
    (replica,) = apps["applications"]["maas-shared"]["deployments"]["SharedPool"]["replicas"]
    deadline = time.monotonic() + 30
    while (unloaded := _unloaded(live, replica)) < N_MODELS:
        assert time.monotonic() < deadline, f"{unloaded} unloads logged by the pool"
        time.sleep(0.5)


def test_shared_models_in_status_and_errors(
    pool: list[str], live: Settings, env: dict[str, str]
) -> None:
    out = maas(env, "status").stdout
    assert out.count("shared pool") >= N_MODELS
    bad = httpx.post(
        f"{live.serve_url}/v1/models/{pool[0]}/predict",
        content=b"{nope",
        headers={"content-type": "application/json", **auth(live)},
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_json"
    wrong = httpx.post(
        f"{live.serve_url}/v1/models/{pool[0]}/versions/9/predict", json={}, headers=auth(live)
    )
    assert wrong.status_code == 404
    refused = maas(env, "canary", pool[0], "--version", "1", "--percent", "5", check=False)
    assert refused.returncode == 1
    assert "shared pool" in refused.stderr


def test_promote_and_undeploy_a_shared_model(pool: list[str], client: MaaS, live: Settings) -> None:
    from sklearn.dummy import DummyClassifier

    name = pool[0]
    model = DummyClassifier(strategy="constant", constant="new").fit([[0.0]], ["new"])
    v2 = client.register(name, model, input_example=[[0.0]]).version
    client.promote(name, v2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _ask(live, name).json()["predictions"] != ["new"]:
        time.sleep(0.2)
    r = _ask(live, name)
    assert r.json()["predictions"] == ["new"]
    assert r.headers["x-maas-model-version"] == v2
    client.undeploy(name)
    deadline = time.monotonic() + 10  # the gateway re-reads the registry at most every 2 s
    while time.monotonic() < deadline and _ask(live, name).status_code != 404:
        time.sleep(0.2)
    gone = _ask(live, name)
    assert gone.status_code == 404
    assert gone.json()["code"] == "not_deployed"


def _unloaded(settings: Settings, replica: dict[str, str]) -> int:
    """How many shared models the pool replica logged as unloaded (LRU evictions), from
    its log file as Ray's log API (on the dashboard) serves it."""
    log = httpx.get(
        f"{settings.dashboard_url}/api/v0/logs/file",
        params={
            "node_id": replica["node_id"],
            "filename": replica["log_file_path"].lstrip("/"),
            "lines": -1,
        },
        headers=dashboard_headers(settings),
        timeout=30,
    )
    assert log.status_code == 200, log.text
    return log.text.count("unloaded model small-")
