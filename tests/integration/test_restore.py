"""Restore: Ray killed, `maas up` again, and then everything stopped with `maas down`,
`maas up` again: each time every deployment, alias, canary, shadow and key is back from
durable state alone (the registry and the security database).

It runs first of the platform's tests (tests/conftest.py), before the seeded examples
are deployed: each restore starts every application again at once, and on 2 cores
what it brings back costs time in proportion (the canary, the shadow, the alias and
the key are what restoring must get right)."""

from __future__ import annotations

import time
from collections import Counter

import httpx

from maas_ray import MaaS, Settings
from maas_ray.control import platform, sessions
from maas_ray.control.nodes import haproxy_dir
from tests.conftest import FIGURES, auth, kill_session, maas


def _rows(client: MaaS) -> dict[str, tuple[str | None, str | None, str]]:
    return {r.model: (r.version, r.alias, r.traffic) for r in client.status()}


def test_deployments_come_back_after_ray_is_killed(
    client: MaaS, live: Settings, env: dict[str, str]
) -> None:
    from sklearn.dummy import DummyClassifier

    for label in ("a", "b"):
        model = DummyClassifier(strategy="constant", constant=label)
        version = client.register("rs", model.fit([[0.0]], [label]), input_example=[[0.0]])
    client.promote("rs", "1")
    client.deploy("rs", alias="production")
    client.canary("rs", version.version, 40)
    for label in ("x", "y"):
        model = DummyClassifier(strategy="constant", constant=label)
        client.register("rsh", model.fit([[0.0]], [label]), input_example=[[0.0]])
    client.deploy("rsh", "1", num_cpus=0.25)
    client.shadow("rsh", "2", 100)
    key = client.create_key(["predict:rs"], name="restore-bot").key
    before = _rows(client)
    assert before["rs"][2].endswith("40% (canary)")
    assert "shadow" in before["rsh"][2], before["rsh"]

    # Kill the whole Ray head session (GCS, raylet, Serve controller, proxy, replicas).
    sid = platform._load_state(live)["ray"]["sid"]
    kill_session(sid)
    assert not sessions.processes(sid)

    proc = maas(env, "up")
    out = proc.stdout
    assert "not restored" not in proc.stderr, proc.stderr
    assert "already running" in out  # MLflow, untouched
    assert out.count("started") == 2  # Ray and Serve
    after = _rows(client)
    assert after == before
    assert all(r.health == "RUNNING" for r in client.status())
    bot = {"Authorization": f"Bearer {key}"}
    answer = httpx.post(
        f"{live.serve_url}/v1/models/rs/predict", json={"inputs": [[0.0]]}, headers=bot, timeout=30
    )
    assert answer.status_code == 200, answer.text  # a key made before: still good
    shadowed = httpx.post(
        f"{live.serve_url}/v1/models/rsh/predict", json={"inputs": [[0.0]]}, headers=auth(live)
    )
    assert shadowed.json()["predictions"] == ["x"]  # the primary answers; the shadow mirrors
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=30, headers=auth(live)) as http:
        for _ in range(300):
            r = http.post(f"{live.serve_url}/v1/models/rs/predict", json={"inputs": [[0.0]]})
            assert r.status_code == 200
            seen[r.json()["predictions"][0]] += 1
    share = seen["b"] / 3
    FIGURES.append(f"restore: canary 40% after Ray was killed and `maas up`: {share:.1f}% of 300")
    assert 30 <= share <= 50, seen

    # A clean stop of everything (MLflow too), then `maas up`: the same again.
    # Serve's HAProxy keeps its files in the platform's Ray folder (a folder per head:
    # the killed one's and this one's), not Ray's shared /tmp/haproxy-serve.
    assert len(list(haproxy_dir(live).glob("*/haproxy.cfg"))) == 2
    started = time.monotonic()
    stopped = maas(env, "down").stdout
    assert not haproxy_dir(live).exists()  # gone with the head
    assert "mlflow" in stopped, stopped
    assert "ray" in stopped, stopped
    assert not platform.running(live)["ray"]
    proc = maas(env, "up")
    assert "not restored" not in proc.stderr, proc.stderr
    assert proc.stdout.count("started") == 3, proc.stdout  # MLflow, Ray and Serve
    took = time.monotonic() - started
    assert _rows(client) == before
    assert all(r.health == "RUNNING" for r in client.status())
    again = httpx.post(
        f"{live.serve_url}/v1/models/rs/predict", json={"inputs": [[0.0]]}, headers=bot, timeout=30
    )
    assert again.status_code == 200, again.text
    FIGURES.append(f"restore: `maas down` then `maas up` brought everything back in {took:.0f} s")
    for name in ("rs", "rsh"):  # their replicas' CPUs, back for the tests after this one
        client.undeploy(name)
