"""The registry with its MLflow server down (registry/_reach.py): a call that reached no
server is RegistryUnavailable (503, registry_unavailable), told apart from the server's
own answers by the exception's chain; once seen down, calls fail at once until a probe
finds the server back. Against a real closed port on loopback."""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import Any

import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

from maas_ray.errors import RegistryUnavailable
from maas_ray.registry import Registry
from maas_ray.registry._reach import ANSWERING_ENV, PROBE_S, Reach, unreachable


@pytest.fixture
def closed_uri(monkeypatch: pytest.MonkeyPatch) -> str:
    """An http:// URI on a loopback port nothing listens on (MLflow retries once)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_a_refused_connection_is_unreachable_and_an_answer_is_not(closed_uri: str) -> None:
    with pytest.raises(MlflowException) as refused:
        MlflowClient(closed_uri, closed_uri).search_registered_models()
    assert unreachable(refused.value)
    answered = MlflowException("no such model", error_code="RESOURCE_DOES_NOT_EXIST")
    assert not unreachable(answered)
    assert not unreachable(ValueError("bad input"))


def test_an_answer_cut_off_midway_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server died while it answered (SIGKILL mid-response): no answer either."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def answer_half() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        conn.sendall(head + b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"reg')
        conn.close()

    thread = threading.Thread(target=answer_half)
    thread.start()
    uri = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        with pytest.raises(MlflowException) as cut:
            MlflowClient(uri, uri).search_registered_models()
    finally:
        thread.join(timeout=10)
        server.close()
    assert unreachable(cut.value)


def test_the_registry_says_the_server_is_down_then_fails_at_once(closed_uri: str) -> None:
    registry = Registry(closed_uri)
    with pytest.raises(RegistryUnavailable) as down:
        registry.list_models()
    assert (down.value.status_code, down.value.code) == (503, "registry_unavailable")
    assert closed_uri in down.value.message
    assert "maas up" in down.value.message
    started = time.perf_counter()
    with pytest.raises(RegistryUnavailable):
        registry.get_model("anything")  # known down: no call, no probe
    assert time.perf_counter() - started < 0.05
    with pytest.raises(RegistryUnavailable):
        registry.check()


class Counting:
    """An MlflowClient stand-in: refused while ``down`` (raised as MLflow does, inside
    the ``except``, so the connection error is the chain), counts the calls."""

    def __init__(self) -> None:
        self.down, self.calls = True, 0
        self.tracking_uri = "http://127.0.0.1:1"

    def search_registered_models(self, **_: Any) -> list[str]:
        import requests

        self.calls += 1
        if self.down:
            try:
                raise requests.ConnectionError("refused")
            except requests.ConnectionError as exc:
                raise MlflowException(f"API request failed with exception {exc}")  # noqa: B904
        return ["m"]


def test_calls_come_back_once_a_probe_finds_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    reach = Reach("http://127.0.0.1:1")
    fake = Counting()
    client = reach.wrap(fake)
    assert client.tracking_uri == fake.tracking_uri  # attributes pass through
    with pytest.raises(RegistryUnavailable):
        client.search_registered_models()
    probes: list[int] = []
    monkeypatch.setattr(reach, "answers", lambda: probes.append(1) or not fake.down)
    for _ in range(5):
        with pytest.raises(RegistryUnavailable):
            client.search_registered_models()
    assert (fake.calls, probes) == (1, [])  # within PROBE_S: neither calls nor probes
    assert PROBE_S >= 0.5
    fake.down = False
    monkeypatch.setattr("maas_ray.registry._reach.PROBE_S", 0.0)
    assert client.search_registered_models() == ["m"]
    assert (fake.calls, probes) == (2, [1])


def test_only_processes_that_answer_people_give_up_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    Registry("http://127.0.0.1:1")
    assert not any(name in os.environ for name in ANSWERING_ENV)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")  # the operator's own wins
    Registry("http://127.0.0.1:1", answering=True)
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "0"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"


def test_a_failure_that_hides_its_cause_is_asked_about_with_a_probe(closed_uri: str) -> None:
    """MLflow sums failed artifact downloads up as one INTERNAL_ERROR with the refused
    connections only in its text (CI saw a 500 for a registration MLflow died under)."""
    import http.server

    summed = MlflowException("The following failures occurred while downloading one or more")
    with pytest.raises(RegistryUnavailable) as down, Reach(closed_uri).guard():
        raise summed
    assert down.value.__cause__ is summed
    refused = MlflowException("no such model", error_code=RESOURCE_DOES_NOT_EXIST)
    with pytest.raises(MlflowException) as answer, Reach(closed_uri).guard():
        raise refused  # the server's own answer: no probe, passed on as it is

    class Healthy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        uri = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(MlflowException) as up, Reach(uri).guard():
            raise summed  # the server answers its health probe: a real failure
    finally:
        server.shutdown()
        server.server_close()
    assert (answer.value, up.value) == (refused, summed)
