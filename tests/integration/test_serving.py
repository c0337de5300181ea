"""Predict over HTTP: MLflow's scoring formats, the same answers as `mlflow models serve`."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits

from maas_ray import Settings
from maas_ray.registry import Registry
from tests.conftest import FIGURES, ROOT, auth, maas, post

MLFLOW_SERVE_PORT = 25610
TEXTS = ["这本书很好看", "this book is terrible", "服务太差了", "what a wonderful day"]


def _rows(name: str, n: int = 4) -> list[list[float]]:
    data = load_breast_cancer().data if name == "tabular" else load_digits().data
    return data[:: max(1, len(data) // n)][:n].tolist()


def payloads(name: str) -> dict[str, dict[str, Any]]:
    """The four scoring formats, each carrying the same rows."""
    if name == "sentiment":
        rows: list[Any] = TEXTS
        split = {"columns": ["text"], "data": [[t] for t in TEXTS]}
        records = [{"text": t} for t in TEXTS]
    else:
        rows = _rows(name)
        cols = [str(i) for i in range(len(rows[0]))]
        split = {"columns": cols, "data": rows}
        records = [dict(zip(cols, r, strict=True)) for r in rows]
    return {
        "inputs": {"inputs": rows},
        "instances": {"instances": rows},
        "dataframe_split": {"dataframe_split": split},
        "dataframe_records": {"dataframe_records": records},
    }


@contextmanager
def mlflow_models_serve(settings: Settings, model_uri: str) -> Iterator[str]:
    """The peer: `mlflow models serve` on the same registry, stopped by process group."""
    cmd = [
        str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", model_uri,
        "--env-manager", "local", "-h", "127.0.0.1", "-p", str(MLFLOW_SERVE_PORT), "-w", "1",
    ]  # fmt: skip
    # MLflow runs `uvicorn` from PATH: put this environment's scripts first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": settings.mlflow_uri, "PATH": path}
    proc = subprocess.Popen(
        cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{MLFLOW_SERVE_PORT}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/ping", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            time.sleep(0.5)
        else:
            pytest.fail(f"{shlex.join(cmd)} did not answer in 120 s")
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize("name", ["sentiment", "tabular", "digits"])
def test_same_answers_as_mlflow_models_serve(
    name: str, seeded: dict[str, Any], live: Settings
) -> None:
    version = seeded[name]["version"]
    ours: dict[str, httpx.Response] = {}
    for fmt, body in payloads(name).items():
        ours[fmt] = post(live, f"/v1/models/{name}/predict", body)
    with mlflow_models_serve(live, f"models:/{name}/{version}") as url:
        for fmt, body in payloads(name).items():
            theirs = httpx.post(f"{url}/invocations", json=body, timeout=60)
            mine = ours[fmt]
            if theirs.status_code == 200:
                assert mine.status_code == 200, (fmt, mine.text)
                assert mine.json() == theirs.json(), fmt
                assert mine.headers["x-maas-model-version"] == version
            else:
                # Where MLflow refuses a format for this signature, we refuse it too (4xx).
                assert 400 <= mine.status_code < 500, (fmt, mine.status_code, mine.text)
    assert ours["inputs"].status_code == 200  # the format the README shows always works
    assert ours["instances"].status_code == 200


def test_example_answers_are_labels(seeded: dict[str, Any], live: Settings) -> None:
    assert post(live, "/v1/models/sentiment/predict", {"inputs": TEXTS}).json() == {
        "predictions": ["positive", "negative", "negative", "positive"]
    }
    data = load_breast_cancer()
    rows = [data.data[i].tolist() for i in range(40)]
    tab = post(live, "/v1/models/tabular/predict", {"inputs": rows}).json()["predictions"]
    assert set(tab) <= {"malignant", "benign"}
    hits = sum(p == data.target_names[t] for p, t in zip(tab, data.target[:40], strict=True))
    assert hits >= 36
    digits = load_digits()
    got = post(live, "/v1/models/digits/predict", {"inputs": digits.data[:50].tolist()}).json()
    assert all(isinstance(p, int) for p in got["predictions"])
    assert np.mean(np.array(got["predictions"]) == digits.target[:50]) >= 0.9


def test_version_route_and_metadata(seeded: dict[str, Any], live: Settings) -> None:
    v = seeded["sentiment"]["version"]
    resp = post(live, f"/v1/models/sentiment/versions/{v}/predict", {"inputs": TEXTS[:1]})
    assert resp.status_code == 200
    assert resp.headers["x-maas-model-version"] == v
    meta = httpx.get(f"{live.serve_url}/v1/models/sentiment", headers=auth(live), timeout=10)
    meta = meta.json()
    assert meta["name"] == "sentiment"
    assert meta["version"] == v
    assert meta["inputs"]


def test_csv_body(seeded: dict[str, Any], live: Settings) -> None:
    rows = _rows("tabular", 2)
    csv = ",".join(str(i) for i in range(30)) + "\n"
    csv += "\n".join(",".join(repr(x) for x in r) for r in rows) + "\n"
    resp = post(live, "/v1/models/tabular/predict", csv.encode(), "text/csv")
    assert resp.status_code == 200, resp.text
    assert resp.json() == post(live, "/v1/models/tabular/predict", {"inputs": rows}).json()


def test_cli_predict_json_and_file(
    seeded: dict[str, Any], env: dict[str, str], tmp_path: Path
) -> None:
    out = maas(env, "predict", "sentiment", "--json", '["这本书很好看", "this book is terrible"]')
    assert '"positive"' in out.stdout
    assert '"negative"' in out.stdout
    assert f'"version": "{seeded["sentiment"]["version"]}"' in out.stdout
    rows = _rows("tabular", 3)
    csv = tmp_path / "rows.csv"
    csv.write_text(
        ",".join(str(i) for i in range(30))
        + "\n"
        + "\n".join(",".join(map(str, r)) for r in rows)
        + "\n"
    )
    out = maas(env, "predict", "tabular", "--file", str(csv))
    assert out.stdout.count("malignant") + out.stdout.count("benign") == 3
    bad = maas(env, "predict", "tabular", "--json", "[[1, 2]]", check=False)
    assert bad.returncode == 1
    assert "error:" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_readme_curl_examples_work_as_written(
    seeded: dict[str, Any], live: Settings, admin_key: str
) -> None:
    """Every `curl` block in README.md, pointed at this session's port, answers as shown.

    Run by a shell as a user would, with $KEY holding the session's admin key (what
    the README's `KEY=$(cat ~/.maas/admin.key)` gives for the default home).
    """
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"(curl .*?/predict)\n# (.*)", readme.replace("\\\n", " "))
    # An answer shown with "..." (probabilities) is a shape, not a text to compare: those
    # blocks run where their model is served (test_examples.py, the images curl).
    blocks = [(command, shown) for command, shown in blocks if "..." not in shown]
    assert len(blocks) >= 3
    assert any("$KEY" not in command for command, _ in blocks)  # the 401 one
    for command, expected in blocks:
        command = command.replace(":8000/", f":{live.serve_port}/")
        got = subprocess.run(
            ["bash", "-c", f"{command} -w '\\n%{{http_code}}'"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "KEY": admin_key},
        ).stdout
        body, code = got.rsplit("\n", 1)
        shown = expected.split("  ")[0].split("   ")[0].strip()
        assert body == shown, (command, body, shown)
        status = re.search(r"\((\d{3})\)", expected)
        assert code == (status.group(1) if status else "200"), (command, code)


def _batch_counts(settings: Settings, app: str) -> tuple[int, int]:
    """The batches ``app``'s replicas ran, and how many of them held one request only,
    from Ray's metrics."""
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{settings.ray_metrics_port}/metrics", timeout=10).text
    total = single = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "ray_serve_actual_batch_size":
            continue
        for sample in family.samples:
            if sample.labels.get("application") != app:
                continue
            if sample.name.endswith("_count"):
                total += sample.value
            elif sample.name.endswith("_bucket") and float(sample.labels["le"]) == 1.0:
                single += sample.value
    return int(total), int(single)


def test_batched_concurrent_requests_match_one_by_one(
    seeded: dict[str, Any], live: Settings, client: Any, registry: Registry
) -> None:
    """tabular with batching: concurrent answers equal sequential ones."""
    from concurrent.futures import ThreadPoolExecutor

    import yaml

    document = yaml.safe_load((ROOT / "deployments" / "models.yaml").read_text())
    document["models"] = [m for m in document["models"] if m["model"] in seeded]
    client.apply(document)  # the session's four; test_examples.py applies all seven
    assert registry.get_spec("minilm")["batching"]["max_batch_size"] == 32
    batching = {"max_batch_size": 16, "batch_wait_timeout_s": 0.02}
    client.deploy("tabular", alias="production", batching=batching)
    assert registry.get_spec("tabular")["batching"]["max_batch_size"] == 16
    data = load_breast_cancer().data
    bodies = [{"inputs": data[i : i + 1 + i % 3].tolist()} for i in range(0, 48, 2)]
    route = "/v1/models/tabular/predict"
    one_by_one = [post(live, route, b).json() for b in bodies]

    def burst() -> None:
        """Every body at once, over one client's connections (a client each would spend
        ~20 ms of CPU on its TLS context first, spreading the requests out); the answers
        are the one-by-one answers."""
        limits = httpx.Limits(max_connections=len(bodies))
        with (
            httpx.Client(headers=auth(live), timeout=60, limits=limits) as http,
            ThreadPoolExecutor(max_workers=len(bodies)) as pool,
        ):
            together = list(pool.map(lambda b: http.post(live.serve_url + route, json=b), bodies))
        assert [r.status_code for r in together] == [200] * len(bodies)
        assert [r.json() for r in together] == one_by_one

    burst()
    # Ray's own batch-size histogram (its metrics export) shows batches of more than one
    # request formed: the sequential requests above were batches of one. On a busy
    # machine a burst's requests can reach the replica further apart than the batch
    # waits (one run saw only batches of one): another burst every 10 s until then.
    deadline = time.monotonic() + 90  # Ray exports metrics every few seconds
    bursts, next_burst = 1, time.monotonic() + 10
    while (counts := _batch_counts(live, "tabular"))[0] == counts[1]:
        assert time.monotonic() < deadline, (
            f"no batch of more than one request in {bursts} bursts ({counts[0]} batches)"
        )
        if time.monotonic() >= next_burst:
            burst()
            bursts, next_burst = bursts + 1, time.monotonic() + 10
        time.sleep(1)
    joined = counts[0] - counts[1]
    FIGURES.append(
        f"batching: {joined} tabular batches held more than one request ({bursts} burst(s))"
    )
    # A bad request in the same burst fails alone.
    bad = {"inputs": [[1.0] * 29]}
    with ThreadPoolExecutor(max_workers=4) as pool:
        mixed = list(
            pool.map(lambda b: post(live, "/v1/models/tabular/predict", b), [bad, *bodies[:3]])
        )
    assert mixed[0].status_code == 422
    assert [r.json() for r in mixed[1:]] == one_by_one[:3]
