"""One model replica's HTTP handling in process (httpx.ASGITransport): the real
``ModelServer`` class around a real scikit-learn model saved by MLflow, with the
registry download replaced by loading that folder. Routes, authentication, the
version pin, error bodies, the body limit, batching and the canary forward are
checked without a cluster."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import mlflow.pyfunc
import mlflow.sklearn
import orjson
import pandas as pd
import pytest
from starlette.requests import Request

from maas_ray.serving import deployment
from maas_ray.serving.runtime import ModelRuntime
from maas_ray.spec import Canary, Traffic
from tests.unit.conftest import PINS

pytestmark = pytest.mark.anyio
SECRET = "unit-test-hs256-secret-0123456789abcdef"
PREDICT = "/v1/models/iris/predict"


@pytest.fixture(autouse=True)
def fresh_batch_queue(monkeypatch: pytest.MonkeyPatch) -> None:
    """Serve keeps one batch queue per decorated method (on the class), tied to the event
    loop it first ran on: each test gets its own, and the class is left as it was (a
    queue left behind holds locks, and Ray can no longer serialize the class)."""
    queue = deployment.ModelServer.func_or_class._batched.set_max_batch_size.__self__
    for attr in ("_queue", "max_batch_size", "batch_wait_timeout_s"):
        monkeypatch.setattr(queue, attr, None if attr == "_queue" else getattr(queue, attr))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Serve's replicas run on asyncio


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An iris classifier with a signature, saved as MLflow saves a registered version."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True, as_frame=True)
    model = LogisticRegression(max_iter=300).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "iris"
    mlflow.sklearn.save_model(model, str(path), input_example=X.head(2), pip_requirements=PINS)
    return path


class FakeChallenger:
    """A Serve handle to the canary's application: answers as version 2 would."""

    def __init__(self) -> None:
        self.asked: list[bytes] = []
        self.request_ids: list[str | None] = []
        self.answer = self

    async def remote(
        self, body: bytes, content_type: str | None, request_id: str | None = None
    ) -> tuple[int, bytes]:
        self.asked.append(body)
        self.request_ids.append(request_id)
        return 200, b'{"predictions": [2]}'


def _replica(
    saved: Path, monkeypatch: pytest.MonkeyPatch, home: Path, **options: Any
) -> deployment.ModelServer:
    monkeypatch.setenv("MAAS_HOME", str(home))
    monkeypatch.setenv("MAAS_JWT_SECRET", SECRET)
    monkeypatch.setenv("MAAS_MAX_BODY_MB", "1")

    def load(
        cls: type[ModelRuntime], registry: Any, name: str, version: str, depth: int, cache: Any
    ) -> Any:
        runtime = cls(name, version, mlflow.pyfunc.load_model(str(saved)))
        runtime.max_depth = depth
        return runtime

    monkeypatch.setattr(ModelRuntime, "load", classmethod(load))
    cls: Any = deployment.ModelServer.func_or_class
    server: deployment.ModelServer = cls("iris", "1", "http://127.0.0.1:1", **options)
    # Its log's store (127.0.0.1:1) never answers: a collected replica must not wait on
    # it (PredictionLog.close, what a stopping replica does, has a test of its own).
    server.log.close = lambda timeout_s=0.0: None  # type: ignore[method-assign]
    return server


async def _client(server: deployment.ModelServer) -> httpx.AsyncClient:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        response = await server(Request(scope, receive))
        await response(scope, receive, send)

    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://maas")


@pytest.fixture
async def replica(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, deployment.ModelServer]]:
    server = _replica(saved_model, monkeypatch, tmp_path)
    async with await _client(server) as client:
        yield client, server


def _bearer(scope: str) -> dict[str, str]:
    claims = {"sub": "unit", "scope": scope, "exp": int(time.time()) + 300}
    return {"authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


ROW = {"sepal length (cm)": 5.1, "sepal width (cm)": 3.5}
ROWS = {
    "dataframe_records": [
        {**ROW, "petal length (cm)": 1.4, "petal width (cm)": 0.2},
        {**ROW, "petal length (cm)": 6.0, "petal width (cm)": 2.5},
    ]
}


async def test_a_predict_answers_the_model_and_names_its_version(replica: Any) -> None:
    client, _ = replica
    resp = await client.post(PREDICT, json=ROWS, headers=_bearer("predict:iris"))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"predictions": [0, 2]}
    assert resp.headers["x-maas-model-version"] == "1"
    pinned = await client.post(
        "/v1/models/iris/versions/1/predict", json=ROWS, headers=_bearer("predict:iris")
    )
    assert pinned.json() == {"predictions": [0, 2]}


async def test_explain_answers_per_row_attributions_behind_the_predict_scope(
    replica: Any,
) -> None:
    client, server = replica
    explain = "/v1/models/iris/explain"
    headers = _bearer("predict:iris")
    # Loaded without an input example or background: nothing to explain against.
    bare = await client.post(explain, json=ROWS, headers=headers)
    assert (bare.status_code, bare.json()["code"]) == (422, "not_explainable"), bare.text
    server.runtime._explainer_error = None  # as a replica of a version with rows would be
    server.runtime.background = pd.DataFrame(ROWS["dataframe_records"] * 3)
    resp = await client.post(explain, json=ROWS, headers=headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["x-maas-model-version"] == "1"
    answer = resp.json()
    assert (answer["model"], answer["version"]) == ("iris", "1")
    assert (answer["method"], answer["background_rows"]) == ("shap.LinearExplainer", 6)
    rows = answer["explanations"]
    assert [r["class"] for r in rows] == ["0", "2"]  # the classes predict answers
    for r in rows:
        total = sum(a["value"] for a in r["attributions"])
        assert total == pytest.approx(r["prediction"] - r["baseline"], abs=1e-6)
        assert {a["feature"] for a in r["attributions"]} == set(ROWS["dataframe_records"][0])
    pinned = await client.post("/v1/models/iris/versions/1/explain", json=ROWS, headers=headers)
    assert pinned.json() == answer
    other = await client.post("/v1/models/iris/versions/7/explain", json=ROWS, headers=headers)
    assert (other.status_code, other.json()["code"]) == (404, "not_deployed")
    refused = await client.post(explain, json=ROWS, headers=_bearer("predict:digits"))
    assert refused.status_code == 403
    assert (await client.get(explain, headers=headers)).status_code == 405
    bad = await client.post(explain, json={"dataframe_records": [{"x": "y"}]}, headers=headers)
    assert bad.status_code == 422, bad.text
    # A PNG heat map is for image models; an unknown format is refused whatever the model.
    for fmt in ("png", "svg"):
        png = await client.post(f"{explain}?format={fmt}", json=ROWS, headers=headers)
        assert (png.status_code, png.json()["code"]) == (400, "bad_request"), png.text
        assert "format" in png.json()["error"]
    plain = await client.post(f"{explain}?format=json", json=ROWS, headers=headers)
    assert plain.json() == answer


class ExplainingChallenger:
    """The canary's handle, as far as explain goes: answers as version 2 would."""

    def __init__(self) -> None:
        self.explain = self
        self.asked: list[tuple[bytes, str | None, bool]] = []

    async def remote(self, body: bytes, ctype: str | None, predictions: bool) -> tuple[int, bytes]:
        self.asked.append((body, ctype, predictions))
        return 200, b'{"predictions": [2], "explanation": {"version": "2"}}'


async def test_the_oip_explain_handle_answers_predictions_and_explanation_of_one_version(
    replica: Any,
) -> None:
    """What the gateway's OIP v2 infer with ``parameters.explain`` calls."""
    client, server = replica
    server.log.percent = 100.0
    status, out, version = await server.explain_payload(ROWS)
    assert (status, orjson.loads(out)["code"], version) == (422, "not_explainable", "1")
    server.runtime._explainer_error = None  # as a replica of a version with rows would be
    server.runtime.background = pd.DataFrame(ROWS["dataframe_records"] * 3)
    status, out, version = await server.explain_payload(ROWS)
    assert (status, version) == (200, "1"), out
    answer = orjson.loads(out)
    assert answer["predictions"] == [0, 2]  # the predict's answer, from the same rows
    alone = await client.post("/v1/models/iris/explain", json=ROWS, headers=_bearer("predict:iris"))
    assert answer["explanation"] == alone.json()  # the explain route's answer, as it is
    assert server.log._records == []  # an explanation is not a prediction to monitor
    status, out, _ = await server.explain_payload(ROWS, "7")
    assert (status, orjson.loads(out)["code"]) == (404, "not_deployed")
    challenger = ExplainingChallenger()
    server.reconfigure(Traffic(canary=Canary(version="2", percent=100)).model_dump())
    server.split._handle = challenger
    assert (await server.explain_payload(ROWS))[2] == "1"  # unpinned: the primary explains
    status, out, version = await server.explain_payload(ROWS, "2")
    assert (status, version, orjson.loads(out)["predictions"]) == (200, "2", [2])
    assert [(orjson.loads(b), c, p) for b, c, p in challenger.asked] == [
        (ROWS, "application/json", True)
    ]
    bad = await server.explain_payload({"dataframe_records": [{"x": "y"}]})
    assert bad[0] == 422, bad


async def test_metadata_and_traffic_describe_the_loaded_version(replica: Any) -> None:
    client, _ = replica
    meta = (await client.get("/v1/models/iris", headers=_bearer("predict:iris"))).json()
    assert (meta["name"], meta["version"]) == ("iris", "1")
    assert [c["name"] for c in meta["inputs"]][:2] == list(ROW)
    traffic = await client.get("/v1/models/iris/traffic", headers=_bearer("metrics"))
    assert traffic.status_code == 200, traffic.text
    assert traffic.json()["primary"] == "1"
    refused = await client.get("/v1/models/iris/traffic", headers=_bearer("predict:iris"))
    assert refused.status_code == 403  # the split is operators' business


async def test_credentials_are_checked_before_the_model_runs(replica: Any) -> None:
    client, _ = replica
    none = await client.post(PREDICT, json=ROWS)
    assert none.status_code == 401
    assert none.headers["www-authenticate"].startswith("Bearer")
    other = await client.post(PREDICT, json=ROWS, headers=_bearer("predict:digits"))
    assert (other.status_code, other.json()["code"]) == (403, "forbidden")
    forged = {"authorization": "Bearer " + jwt.encode({"scope": "admin"}, "x" * 32)}
    assert (await client.post(PREDICT, json=ROWS, headers=forged)).status_code == 401


async def test_bad_input_is_a_json_4xx_with_the_version(replica: Any) -> None:
    client, _ = replica
    headers = _bearer("predict:iris")
    cases = [
        (b"{not json", "application/json", 400),
        (b'{"dataframe_records": [{"sepal length (cm)": "x"}]}', "application/json", 422),
        (b'{"instances": 1, "inputs": 2}', "application/json", 400),
        (b"a,b\n1,2\n", "text/plain", 415),
        (b"0" * (2 * 1024 * 1024), "application/json", 413),
    ]
    for body, ctype, status in cases:
        resp = await client.post(PREDICT, content=body, headers={**headers, "content-type": ctype})
        assert resp.status_code == status, (body[:40], resp.status_code, resp.text)
        assert set(resp.json()) >= {"error", "code"}, resp.text
        assert resp.headers["x-maas-model-version"] == "1"


async def test_other_versions_methods_and_paths_are_json_4xx(replica: Any) -> None:
    client, _ = replica
    headers = _bearer("predict:iris")
    other = await client.post("/v1/models/iris/versions/7/predict", json=ROWS, headers=headers)
    assert (other.status_code, other.json()["code"]) == (404, "not_deployed")
    wrong = await client.get(PREDICT, headers=headers)
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["allow"]
    admin = await client.get("/v1/admin/models", headers=_bearer("admin"))
    assert admin.status_code == 404  # not a route of this application


async def test_batched_requests_each_get_their_own_answer(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from ray import serve

    # serve.batch reads the replica's max_ongoing_requests when its queue is made.
    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=64))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)
    batching = {"max_batch_size": 8, "batch_wait_timeout_s": 0.05}
    server = _replica(saved_model, monkeypatch, tmp_path, batching=batching)
    rows = ROWS["dataframe_records"]
    calls = []
    predict_many = server.runtime.predict_many
    server.runtime.predict_many = lambda inputs: calls.append(len(inputs)) or predict_many(inputs)
    async with await _client(server) as client:
        answers = await asyncio.gather(
            *(
                client.post(
                    PREDICT,
                    json={"dataframe_records": [rows[i % 2]]},
                    headers=_bearer("predict:iris"),
                )
                for i in range(12)
            ),
            client.post(PREDICT, json={"inputs": [["x"]]}, headers=_bearer("predict:iris")),
        )
    assert [a.json()["predictions"] for a in answers[:-1]] == [[0], [2]] * 6
    assert answers[-1].status_code in (400, 422), answers[-1].text  # alone in its failure
    assert sum(calls) == 12, calls  # the bad one failed in parsing, before the queue
    assert max(calls) > 1, calls  # requests were predicted together


async def test_a_canary_share_is_forwarded_and_a_pin_to_it_always_is(replica: Any) -> None:
    client, server = replica
    challenger = FakeChallenger()
    server.reconfigure(Traffic(canary=Canary(version="2", percent=50)).model_dump())
    server.split._handle = challenger  # what the Serve handle lookup would find
    headers = _bearer("predict:iris")
    seen = [
        (await client.post(PREDICT, json=ROWS, headers=headers)).headers["x-maas-model-version"]
        for _ in range(200)
    ]
    assert 60 <= seen.count("2") <= 140, seen.count("2")
    pinned = await client.post("/v1/models/iris/versions/2/predict", json=ROWS, headers=headers)
    assert (pinned.status_code, pinned.json()) == (200, {"predictions": [2]})
    assert len(challenger.asked) == seen.count("2") + 1
    server.reconfigure(Traffic().model_dump())
    gone = await client.post("/v1/models/iris/versions/2/predict", json=ROWS, headers=headers)
    assert gone.status_code == 404


async def test_each_answer_is_logged_under_its_request_id_and_arm(replica: Any) -> None:
    client, server = replica
    server.log.percent = 100.0  # everything, so every answer below is kept whole
    headers = {**_bearer("predict:iris"), "x-request-id": "req-1"}
    assert (await client.post(PREDICT, json=ROWS, headers=headers)).status_code == 200
    bad = {**headers, "x-request-id": "req-2"}
    assert (await client.post(PREDICT, json={"inputs": "x"}, headers=bad)).status_code == 422
    records = {r[0]: r for r in server.log._records}
    assert set(records) == {"req-1", "req-2"}
    rid, _, version, arm, status, latency_ms, _, body, answer = records["req-1"]
    assert (version, arm, status, answer) == ("1", "production", 200, b'{"predictions":[0,2]}')
    assert latency_ms > 0
    assert b"dataframe_records" in body
    assert records["req-2"][4] == 422
    counts = server.log._counts[("1", "production")]
    assert (counts.requests, counts.errors, len(counts.latencies)) == (2, 1, 2)


async def test_a_canary_answer_is_logged_by_the_canary_with_the_same_request_id(
    replica: Any,
) -> None:
    client, server = replica
    challenger = FakeChallenger()
    server.reconfigure(Traffic(canary=Canary(version="2", percent=100)).model_dump())
    assert server.log.percent == 100.0  # a canary runs: every answer is logged
    server.split._handle = challenger
    headers = {**_bearer("predict:iris"), "x-request-id": "to-canary"}
    resp = await client.post(PREDICT, json=ROWS, headers=headers)
    assert resp.headers["x-maas-model-version"] == "2"
    assert challenger.request_ids == ["to-canary"]
    assert server.log._records == []  # the primary did not answer it, so does not log it
    server.reconfigure(Traffic().model_dump())
    assert server.log.percent == 10.0  # the default share again


async def test_the_handle_path_splits_logs_and_raises_as_http_does(replica: Any) -> None:
    from maas_ray.errors import InvalidInput

    _, server = replica
    server.log.percent = 100.0
    plain = await server.predict(ROWS, request_id="h-1")
    assert (plain["predictions"], plain["version"], plain["request_id"]) == ([0, 2], "1", "h-1")
    assert [r[0] for r in server.log._records] == ["h-1"]  # logged like an HTTP answer
    assert (await server.predict(ROWS))["request_id"]  # a new id when none is given
    challenger = FakeChallenger()
    server.reconfigure(Traffic(canary=Canary(version="2", percent=100)).model_dump())
    server.split._handle = challenger
    split = await server.predict(ROWS, request_id="h-2")
    assert (split["predictions"], split["version"]) == ([2], "2")  # the canary's share
    assert challenger.request_ids == ["h-2"]
    server.reconfigure(Traffic().model_dump())
    with pytest.raises(InvalidInput):
        await server.predict({"inputs": "x"})


class Copying:
    """A registry whose verified download copies a saved model folder."""

    uri = "http://127.0.0.1:1"

    def __init__(self, saved: Path) -> None:
        self.saved = saved
        self.downloads = 0

    def download_checked(self, name: str, version: str, dst: str) -> tuple[Path, str]:
        import shutil

        from maas_ray.registry.digest import artifact_digest

        self.downloads += 1
        local = Path(shutil.copytree(self.saved, Path(dst) / "model"))
        return local, artifact_digest(local)


async def test_the_health_check_asks_the_model_its_input_example_again(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas_ray.errors import PredictionFailed

    load = ModelRuntime.load  # before _replica replaces it
    runtime = load(Copying(saved_model), "iris", "1")  # type: ignore[arg-type]
    assert runtime.example is not None  # read before the download is removed
    runtime.healthy()
    server = _replica(saved_model, monkeypatch, tmp_path)
    server.runtime = runtime
    await server.check_health()

    def broken(data: Any, params: Any = None) -> Any:
        raise RuntimeError("a GPU fell off")

    monkeypatch.setattr(runtime.model, "predict", broken)
    with pytest.raises(PredictionFailed):
        await server.check_health()  # Serve replaces a replica whose check raises
    # A model that never could predict its example is not checked on it (no crash loop).
    monkeypatch.setattr(mlflow.pyfunc.PyFuncModel, "predict", broken)
    quiet = load(Copying(saved_model), "iris", "1")  # type: ignore[arg-type]
    assert quiet.example is None
    quiet.healthy()


@pytest.mark.parametrize("batching", [None, {"max_batch_size": 4, "batch_wait_timeout_s": 0.001}])
async def test_a_predict_past_its_limit_is_a_json_504_at_the_limit(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batching: Any
) -> None:
    from types import SimpleNamespace

    from ray import serve

    # serve.batch reads the replica's max_ongoing_requests when its queue is made.
    context = SimpleNamespace(_deployment_config=SimpleNamespace(max_ongoing_requests=64))
    monkeypatch.setattr(serve, "get_replica_context", lambda: context)
    server = _replica(
        saved_model, monkeypatch, tmp_path, predict_timeout_s=0.3, inline=False, batching=batching
    )
    assert server.timeout_s == 0.3
    slow = server.runtime.model.predict

    def stuck(data: Any, params: Any = None) -> Any:
        time.sleep(1.0)  # a model that hangs (the thread finishes later, unobserved)
        return slow(data)

    monkeypatch.setattr(server.runtime.model, "predict", stuck)
    async with await _client(server) as client:
        started = time.perf_counter()
        resp = await client.post(PREDICT, json=ROWS, headers=_bearer("predict:iris"))
        took = time.perf_counter() - started
    assert resp.status_code == 504, resp.text
    assert resp.json()["code"] == "predict_timeout"
    assert "0.3 s" in resp.json()["error"]
    assert 0.25 < took < 0.9, took
    monkeypatch.delenv("MAAS_PREDICT_TIMEOUT_S", raising=False)
    assert _replica(saved_model, monkeypatch, tmp_path).timeout_s == 30.0  # the setting


def test_a_version_loaded_once_here_loads_again_without_the_registry(
    saved_model: Path, tmp_path: Path
) -> None:
    """A replacement replica during an MLflow outage: the copy verified at the first
    load serves; a version never loaded here still needs the registry."""
    import numpy as np

    from maas_ray.errors import RegistryUnavailable
    from maas_ray.registry.cache import ARTIFACTS, ModelCache

    class Down:
        uri = Copying.uri

        def download_checked(self, name: str, version: str, dst: str) -> tuple[Path, str]:
            raise RegistryUnavailable("the MLflow server does not answer")

    (tmp_path / "cache").mkdir(mode=0o700)
    cache = ModelCache(tmp_path / "cache", 1 << 30)
    registry = Copying(saved_model)
    first = ModelRuntime.load(registry, "iris", "1", cache=cache)  # type: ignore[arg-type]
    again = ModelRuntime.load(Down(), "iris", "1", cache=cache)  # type: ignore[arg-type]
    assert registry.downloads == 1
    assert again.example is not None
    assert np.array_equal(np.asarray(again.predict(again.example)), first.predict(first.example))
    with pytest.raises(RegistryUnavailable):
        ModelRuntime.load(Down(), "iris", "2", cache=cache)  # type: ignore[arg-type]
    # A kept copy that changed is not loaded: the registry's verified download is.
    weights = max(
        (p for p in (cache.entry(Copying.uri, "iris", "1") / ARTIFACTS).rglob("*") if p.is_file()),
        key=lambda p: p.stat().st_size,
    )
    weights.write_bytes(weights.read_bytes() + b"\0")
    ModelRuntime.load(registry, "iris", "1", cache=cache)  # type: ignore[arg-type]
    assert registry.downloads == 2
    assert len(cache.entries()) == 1


def test_a_cache_that_fails_never_fails_the_load(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas_ray.registry.cache import ModelCache

    def broken(*args: Any) -> None:
        raise FileNotFoundError("the cache folder was removed meanwhile")

    cache = ModelCache(tmp_path / "cache", 1 << 30)
    monkeypatch.setattr(cache, "copy_to", broken)
    monkeypatch.setattr(cache, "keep", broken)
    registry = Copying(saved_model)
    runtime = ModelRuntime.load(registry, "iris", "1", cache=cache)  # type: ignore[arg-type]
    assert runtime.example is not None
    assert registry.downloads == 1


def test_a_load_sends_the_example_through_the_request_path_once(
    saved_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new replica's first requests are not its slowest: at load, the version's example
    as a request body (MLflow's serving_input_example.json) is parsed, predicted and
    encoded once. One the model cannot answer changes nothing."""
    sent: list[tuple[bytes, str | None]] = []
    real = ModelRuntime.predict_bytes

    def spy(runtime: ModelRuntime, body: bytes, content_type: str | None) -> bytes:
        sent.append((body, content_type))
        return real(runtime, body, content_type)

    monkeypatch.setattr(ModelRuntime, "predict_bytes", spy)
    ModelRuntime.load_local("iris", "1", saved_model)
    assert sent == [((saved_model / "serving_input_example.json").read_bytes(), "application/json")]
    odd = tmp_path / "iris"
    shutil.copytree(saved_model, odd)
    (odd / "serving_input_example.json").write_text('{"inputs": [[1.0, 2.0]]}')
    runtime = ModelRuntime.load_local("iris", "1", odd)
    assert len(sent) == 2
    assert runtime.example is not None  # the health check's example is the input example

    def broken(runtime: ModelRuntime, body: bytes, content_type: str | None) -> bytes:
        raise RuntimeError("not an error a request could get")

    monkeypatch.setattr(ModelRuntime, "predict_bytes", broken)
    assert ModelRuntime.load_local("iris", "1", saved_model).example is not None
