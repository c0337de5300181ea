"""The SDK's retries: idempotent calls only, on 503/429 and failed connections, with
Retry-After honoured and full jitter otherwise (httpx's MockTransport as the server)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from maas_ray.errors import PlatformUnavailable, RemoteError
from maas_ray.settings import Settings
from maas_ray.transport import Transport, pause


def _transport(tmp_path: Path, answers: list[object], **settings: object) -> tuple[Transport, list]:
    """A Transport whose server gives ``answers`` in turn (an int: that status; an
    exception: raised); returns it and the requests seen."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers[min(len(seen), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        status, headers = answer if isinstance(answer, tuple) else (answer, {})
        body = {"ok": True} if status < 400 else {"error": "busy", "code": "busy"}
        return httpx.Response(status, json=body, headers=headers)

    t = Transport(Settings(home=tmp_path, api_key="k", **settings))
    t.http = httpx.Client(transport=httpx.MockTransport(handler))
    return t, seen


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    pauses: list[float] = []
    monkeypatch.setattr("maas_ray.transport.time.sleep", pauses.append)
    return pauses


def test_a_get_is_retried_on_503_until_it_answers(tmp_path: Path, slept: list[float]) -> None:
    t, seen = _transport(tmp_path, [503, 503, 200], retry_backoff_s=0.2)
    assert t.send("GET", "/v1/admin/status")[0] == {"ok": True}
    assert len(seen) == 3
    assert len(slept) == 2
    assert 0 <= slept[0] <= 0.2
    assert 0 <= slept[1] <= 0.4


def test_a_predict_honours_retry_after_on_429(tmp_path: Path, slept: list[float]) -> None:
    t, seen = _transport(tmp_path, [(429, {"retry-after": "2"}), 200], retry_max_s=10)
    t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")
    assert (len(seen), slept) == (2, [2.0])


def test_a_change_is_never_sent_twice(tmp_path: Path, slept: list[float]) -> None:
    t, seen = _transport(tmp_path, [503, 200])
    with pytest.raises(RemoteError) as info:
        t.request("POST", "/v1/admin/models/m/deploy", content=b"{}")
    assert info.value.status_code == 503
    assert (len(seen), slept) == (1, [])


def test_failed_connections_are_retried_then_said(tmp_path: Path, slept: list[float]) -> None:
    refused = httpx.ConnectError("connection refused")
    t, seen = _transport(tmp_path, [refused], retries=2)
    with pytest.raises(PlatformUnavailable, match="does not answer"):
        t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")
    assert (len(seen), len(slept)) == (3, 2)
    t, seen = _transport(tmp_path, [refused, 200])
    assert t.send("GET", "/healthz")[0] == {"ok": True}


def test_a_request_lost_with_its_replica_goes_again_at_once_the_first_time(
    tmp_path: Path, slept: list[float]
) -> None:
    """Another replica takes it: the pause would be most of what the caller waits. A
    second loss backs off as usual; an overload's 503 never goes at once."""
    lost = httpx.Response(500, text="Internal Server Error")  # the ingress's page
    answers = iter([lost, lost, httpx.Response(200, json={"ok": True})])
    t = Transport(Settings(home=tmp_path, api_key="k", retry_backoff_s=0.2))
    t.http = httpx.Client(transport=httpx.MockTransport(lambda _: next(answers)))
    assert t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")[0]["ok"]
    assert len(slept) == 2
    assert slept[0] == 0.0
    assert 0 <= slept[1] <= 0.4
    refused = httpx.ConnectError("connection refused")
    t, seen = _transport(tmp_path, [refused, 200])
    slept.clear()
    t.send("GET", "/healthz")
    assert (len(seen), slept) == (2, [0.0])
    assert pause(0, None, Settings(home=tmp_path, retry_backoff_s=1.0)) <= 1.0
    assert pause(0, "2", Settings(home=tmp_path), lost_request=True) == 2.0


def test_a_read_timeout_is_not_retried(tmp_path: Path, slept: list[float]) -> None:
    t, seen = _transport(tmp_path, [httpx.ReadTimeout("slow")])
    with pytest.raises(PlatformUnavailable):
        t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")
    assert len(seen) == 1


def test_no_retries_when_set_to_zero(tmp_path: Path, slept: list[float]) -> None:
    t, seen = _transport(tmp_path, [503, 200], retries=0)
    with pytest.raises(RemoteError):
        t.send("GET", "/v1/admin/status")
    assert len(seen) == 1


def test_the_pause_is_jittered_doubled_and_capped(tmp_path: Path) -> None:
    s = Settings(home=tmp_path, retry_backoff_s=1.0, retry_max_s=5.0)
    draws = [pause(3, None, s) for _ in range(200)]
    assert all(0 <= d <= 5.0 for d in draws)  # 1 x 2^3 = 8, cut to 5
    assert max(draws) > 2.5  # spread over the range, not one value
    assert pause(0, "30", s) == 5.0  # a long Retry-After is cut too
    assert pause(0, "0.5", s) == 0.5
    assert 0 <= pause(0, "Wed, 21 Oct 2026 07:28:00 GMT", s) <= 1.0  # a date: the backoff


@pytest.mark.anyio
async def test_async_maas_predicts_reads_and_retries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maas_ray import AsyncMaaS

    async def no_wait(_: float) -> None:
        return None

    monkeypatch.setattr("maas_ray.transport.asyncio.sleep", no_wait)
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        if request.url.path.endswith("/predict"):
            if len(seen) == 1:
                return httpx.Response(503, json={"error": "starting", "code": "unavailable"})
            assert request.headers["authorization"] == "Bearer k"
            headers = {"x-maas-model-version": "3", "x-request-id": "r-1"}
            return httpx.Response(200, json={"predictions": ["a"]}, headers=headers)
        if request.url.path == "/v1/admin/status":
            return httpx.Response(200, json=[])
        return httpx.Response(404, json={"error": "no such model", "code": "model_not_found"})

    async with AsyncMaaS(Settings(home=tmp_path, api_key="k")) as maas:
        sent = maas._http.http.headers  # the credential the SDK set up
        maas._http.http = httpx.AsyncClient(transport=httpx.MockTransport(handler), headers=sent)
        assert await maas.predict("m", [[1.0]]) == ["a"]
        raw = await maas.predict_raw("m", b'{"inputs": [[1.0]]}', "application/json")
        assert (raw["version"], raw["request_id"]) == ("3", "r-1")
        assert await maas.status() == []
        with pytest.raises(RemoteError) as info:
            await maas.model("nope")
    assert info.value.status_code == 404
    assert seen[:2] == ["POST /v1/models/m/predict"] * 2  # the 503 was tried again


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_serves_own_overload_answer_reads_as_overloaded(tmp_path: Path, slept: list[float]) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        # What Serve's Python proxy answers past a replica's queue: text, not JSON.
        text = "Request dropped due to backpressure"
        return httpx.Response(503, text=text, headers={"retry-after": "1"})

    t = Transport(Settings(home=tmp_path, api_key="k", retries=1))
    t.http = httpx.Client(transport=httpx.MockTransport(handler))
    with pytest.raises(RemoteError) as info:
        t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")
    assert slept == [1.0]  # its Retry-After, once
    assert (info.value.status_code, info.value.remote_code) == (503, "overloaded")
    assert "max_queued_requests" in info.value.message


def test_the_ingress_page_for_a_replica_gone_mid_request_is_retried(
    tmp_path: Path, slept: list[float]
) -> None:
    answers = [
        httpx.Response(500, text="<html><body><h1>500 Internal Server Error</h1></body></html>"),
        httpx.Response(200, json={"predictions": [1]}),
    ]
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answers[len(seen) - 1]

    t = Transport(Settings(home=tmp_path, api_key="k"))
    t.http = httpx.Client(transport=httpx.MockTransport(handler))
    assert t.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")[0] == {
        "predictions": [1]
    }
    assert len(seen) == 2
    # The platform's own 500 (JSON) is an answer: not sent again.
    t2, seen2 = _transport(tmp_path, [500, 200])
    with pytest.raises(RemoteError):
        t2.send("POST", "/v1/models/m/predict", idempotent=True, content=b"{}")
    assert len(seen2) == 1


def test_explain_posts_to_the_explain_route_and_reads_a_typed_answer(tmp_path: Path) -> None:
    from maas_ray.client import MaaS

    seen: list[tuple[str, bytes]] = []
    answer = {
        "model": "iris",
        "version": "3",
        "method": "shap.LinearExplainer",
        "output": "decision_function",
        "background_rows": 2,
        "explanations": [
            {
                "prediction": 2.5,
                "baseline": 0.5,
                "class": "setosa",
                "attributions": [{"feature": "petal length (cm)", "value": 2.0}],
            }
        ],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.path, request.content))
        return httpx.Response(200, json=answer)

    maas = MaaS(Settings(home=tmp_path, api_key="k"))
    sent = maas._http.http.headers
    maas._http.http = httpx.Client(transport=httpx.MockTransport(handler), headers=sent)
    got = maas.explain("iris", [[5.1, 3.5, 1.4, 0.2]])
    pinned = maas.explain("iris", [[5.1, 3.5, 1.4, 0.2]], version=3)
    assert got.explanations[0].label == "setosa"
    assert got.explanations[0].attributions[0].feature == "petal length (cm)"
    assert pinned == got
    assert seen == [
        ("/v1/models/iris/explain", b'{"inputs":[[5.1,3.5,1.4,0.2]]}'),
        ("/v1/models/iris/versions/3/explain", b'{"inputs":[[5.1,3.5,1.4,0.2]]}'),
    ]
