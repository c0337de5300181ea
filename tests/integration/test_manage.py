"""`maas apply` and the management HTTP API under /v1/admin."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from maas_ray import MaaS, Settings
from maas_ray.registry import Registry
from tests.conftest import FIGURES, auth, finished, maas


@pytest.fixture(scope="module")
def adm(client: MaaS) -> Iterator[dict[str, str]]:
    """Two versions of a tiny model; @production -> v1, not deployed yet (undeployed
    after the file: every deployment left behind is restored again by test_restore)."""
    from sklearn.dummy import DummyClassifier

    versions = {}
    for label in ("one", "two"):
        model = DummyClassifier(strategy="constant", constant=label).fit([[0.0]], [label])
        versions[label] = client.register("adm", model, input_example=[[0.0]]).version
    client.promote("adm", versions["one"])
    yield versions
    if any(r.model == "adm" for r in client.status()):
        client.undeploy("adm")


def _admin(settings: Settings, method: str, path: str, body: Any = None) -> httpx.Response:
    return httpx.request(
        method,
        f"{settings.serve_url}/v1/admin{path}",
        json=body,
        headers={"x-maas-actor": "ci-bot", **auth(settings)},
        timeout=300,
    )


def test_apply_twice_changes_nothing_the_second_time(
    adm: dict[str, str], client: MaaS, registry: Registry, env: dict[str, str], tmp_path: Path
) -> None:
    doc = {
        "kind": "MaasDeployments",
        "models": [{"model": "adm", "alias": "production", "num_replicas": 1, "num_cpus": 0.25}],
    }
    path = tmp_path / "adm.yaml"
    path.write_text(yaml.safe_dump(doc))
    first = maas(env, "apply", str(path)).stdout
    assert "created" in first
    history_len = len(client.history("adm"))
    spec = registry.get_spec("adm")
    second = maas(env, "apply", str(path)).stdout
    assert "unchanged" in second
    assert registry.get_spec("adm") == spec
    assert len(client.history("adm")) == history_len


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"kind": "MaasDeployments", "models": [{"model": "adm"}]}, "version or an alias"),
        ({"kind": "Other", "models": []}, "kind"),
        ({"kind": "MaasDeployments", "models": [{"model": "adm", "alias": "production",
          "num_replicas": 0}]}, "models.0.num_replicas"),
    ],
)  # fmt: skip
def test_bad_apply_files_are_refused_before_anything_changes(
    doc: dict[str, Any], words: str, adm: dict[str, str], env: dict[str, str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = maas(env, "apply", str(path), check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert words in proc.stderr


def test_apply_with_a_missing_version_changes_nothing(
    adm: dict[str, str], registry: Registry, env: dict[str, str], tmp_path: Path
) -> None:
    before = registry.list_specs()
    doc = {
        "kind": "MaasDeployments",
        "models": [
            {"model": "adm", "alias": "production", "num_replicas": 2},
            {"model": "adm2", "version": "7"},
        ],
    }
    path = tmp_path / "partial.yaml"
    path.write_text(yaml.safe_dump(doc))
    proc = maas(env, "apply", str(path), check=False)
    assert proc.returncode == 1
    assert "adm2" in proc.stderr
    assert registry.list_specs() == before


def test_management_api_promote_history_and_rollback(
    adm: dict[str, str], live: Settings, registry: Registry
) -> None:
    started = time.monotonic()
    resp = _admin(live, "POST", "/models/adm/promote", {"version": adm["two"]})
    answered = time.monotonic() - started
    op = finished(live, resp)
    FIGURES.append(f"management: promote answered in {answered * 1000:.0f} ms (then polled)")
    assert op["state"] == "succeeded", op
    assert (op["action"], op["target"], op["actor"]) == ("promote", "adm", "key:admin (ci-bot)")
    assert op["steps"], op  # what it did, step by step
    assert op["result"]["status"]["version"] == adm["two"]
    answer = httpx.post(
        f"{live.serve_url}/v1/models/adm/predict", json={"inputs": [[0.0]]}, headers=auth(live)
    )
    assert answer.json()["predictions"] == ["two"]
    events = _admin(live, "GET", "/models/adm/history").json()
    assert events[-1]["action"] == "promote"
    assert events[-1]["actor"] == "key:admin (ci-bot)"  # the verified key, then who typed it
    assert (events[-1]["from_version"], events[-1]["to_version"]) == (adm["one"], adm["two"])
    op = finished(live, _admin(live, "POST", "/models/adm/rollback"))
    assert op["state"] == "succeeded", op
    assert registry.get_alias("adm", "production") == adm["one"]
    rows = _admin(live, "GET", "/status").json()
    assert any(r["model"] == "adm" and r["version"] == adm["one"] for r in rows)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/models/adm/promote", {"version": "99"}, 404, "model_not_found"),
        ("POST", "/models/nope/promote", {"version": "1"}, 404, "model_not_found"),
        ("POST", "/models/adm/promote", {}, 422, "invalid_input"),
        ("POST", "/models/adm/canary", {"version": "1", "percent": 120}, 422, "invalid_input"),
        ("POST", "/models/adm/shadow", {"version": "1", "percent": -1}, 422, "invalid_input"),
        ("POST", "/models/nope/rollback", None, 404, "model_not_found"),
        ("GET", "/models/adm/frobnicate", None, 404, "not_found"),
        ("PUT", "/keys", None, 405, "method_not_allowed"),
        ("GET", "/models/adm/deploy", None, 405, "method_not_allowed"),
        ("POST", "/apply", {"kind": "MaasDeployments", "models": []}, 422, "invalid_input"),
        ("POST", "/models/adm/deploy?timeout_s=0", {}, 422, "invalid_input"),
        ("POST", "/models/adm/deploy?timeout_s=soon", {}, 422, "invalid_input"),
        ("POST", "/models/adm/deploy?timeout_s=99999", {}, 422, "invalid_input"),
    ],
)
def test_management_api_errors_are_4xx_json(
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
    adm: dict[str, str],
    live: Settings,
) -> None:
    resp = _admin(live, method, path, body)
    assert resp.status_code == status, resp.text
    assert resp.json()["code"] == code


def test_management_api_malformed_json_and_no_history(adm: dict[str, str], live: Settings) -> None:
    resp = httpx.post(
        f"{live.serve_url}/v1/admin/models/adm/promote",
        content=b"{bad",
        headers={"content-type": "application/json", **auth(live)},
    )
    assert resp.status_code == 400
    assert resp.json()["code"] == "invalid_json"
    # adm is back at its first version: nothing earlier to roll back to.
    resp = _admin(live, "POST", "/models/adm/rollback")
    assert resp.status_code == 409
    assert "no earlier version" in resp.json()["error"]


def test_management_calls_answer_at_once_while_deploys_run(
    client: MaaS, live: Settings, seeded: Any
) -> None:
    """Three deploys queued at once: each call answers with its operation before the
    deploy runs, and the data plane (an unknown model's 404, a shared-pool predict,
    status) answers while they run. How long each took is a figure, not an assert."""
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant=1).fit([[0.0]], [1])
    names = [f"busy{i}" for i in range(3)]
    for name in [*names, "busypool"]:
        client.register(name, model, input_example=[[0.0]])
    client.deploy("busypool", mode="shared")
    answered, started = [], []
    for name in names:
        t = time.monotonic()
        resp = _admin(live, "POST", f"/models/{name}/deploy", {"num_cpus": 0})
        answered.append(time.monotonic() - t)
        assert resp.status_code == 202, resp.text
        started.append(resp)
    # Each call answered before its deploy finished (they run one at a time).
    assert all(r.json()["state"] in ("queued", "running") for r in started), started
    # Each data-plane call: its kind, when it began and ended (wall clock, as the
    # operations record theirs).
    calls: list[tuple[str, float, float]] = []
    ops = [r.json() for r in started]
    while not all(op["state"] in ("succeeded", "failed") for op in ops):
        t = time.time()
        miss = httpx.post(
            f"{live.serve_url}/v1/models/nosuch/predict",
            json={"inputs": [[0.0]]},
            headers=auth(live),
        )
        calls.append(("unknown 404", t, time.time()))
        assert miss.status_code == 404, miss.text
        t = time.time()
        pooled = httpx.post(
            f"{live.serve_url}/v1/models/busypool/predict",
            json={"inputs": [[0.0]]},
            headers=auth(live),
            timeout=30,
        )
        calls.append(("shared predict", t, time.time()))
        assert pooled.status_code == 200, pooled.text
        t = time.time()
        assert _admin(live, "GET", "/status").status_code == 200
        calls.append(("status", t, time.time()))
        ops = [
            _admin(live, "GET", r.headers["location"].removeprefix("/v1/admin")).json()
            for r in started
        ]
        time.sleep(0.2)
    assert [op["state"] for op in ops] == ["succeeded"] * 3, ops
    # The deploys ran one after another, from the first start to the last finish: an
    # unknown model's 404 and a shared-pool predict each answered inside that span (one
    # full run's first round of calls outlasted all three deploys, its status call 3.7 s).
    first, last = min(op["started_at"] for op in ops), max(op["finished_at"] for op in ops)
    inside = {kind for kind, t0, t1 in calls if first <= t0 and t1 <= last}
    assert {"unknown 404", "shared predict"} <= inside, (first, last, calls)
    during: dict[str, list[float]] = {}
    for kind, t0, t1 in calls:
        during.setdefault(kind, []).append(t1 - t0)
    FIGURES.append(
        "management: 3 deploy calls answered in "
        + ", ".join(f"{t * 1000:.0f}" for t in answered)
        + " ms; while they ran: "
        + "; ".join(f"{w} max {max(t) * 1000:.0f} ms ({len(t)} calls)" for w, t in during.items())
    )
    for name in [*names, "busypool"]:
        client.undeploy(name)
