"""The MLflow server as a process sees it: answering, or down.

MLflow's client turns a refused or timed-out connection into an
``MlflowException`` (after its own retries), the same type as a real answer
such as "no such model". ``Reach`` tells them apart by the exception's chain:
a connection that never got an answer becomes ``RegistryUnavailable`` (503,
``registry_unavailable``), with nothing read or changed. Once the server is
seen down, calls fail at once, without waiting on MLflow's retries, until a
one-shot health probe (at most one every ``PROBE_S``) finds it back.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import requests
from mlflow.exceptions import MlflowException

from maas_ray.errors import RegistryUnavailable

PROBE_S = 1.0  # while down: at most one health probe this often
PROBE_TIMEOUT_S = 1.0
# For the processes that answer people (the gateway, the management API): MLflow's
# client retries a refused connection three times with no pause instead of with
# exponential backoff (12 s), and gives up on a server that does not answer in 10 s
# instead of 120 s. Jobs and model replicas keep MLflow's defaults: they can wait.
ANSWERING_ENV = {
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def answer_fast() -> None:
    """Make this process's MLflow calls fail in well under a second when the server
    is down (see ANSWERING_ENV); a setting already in the environment wins."""
    for name, value in ANSWERING_ENV.items():
        os.environ.setdefault(name, value)


_NO_ANSWER = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    httpx.TransportError,
)


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` is a call to the MLflow server that got no answer at all (refused,
    reset, timed out, or cut off midway: the server died while answering), as opposed to
    an answer (an error the server gave)."""
    seen: BaseException | None = exc
    for _ in range(16):  # the chain is short; a cycle must not loop forever
        if seen is None:
            return False
        if isinstance(seen, _NO_ANSWER):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def answered(exc: BaseException) -> bool:
    """Whether ``exc`` is surely the server's own answer (an MLflow error code such as
    RESOURCE_DOES_NOT_EXIST). MLflow sums up failed artifact downloads as one
    INTERNAL_ERROR with the connection errors only in its text, so that one, like any
    other exception, is asked about with a health probe."""
    code = getattr(exc, "error_code", None)
    return isinstance(exc, MlflowException) and code not in (None, "INTERNAL_ERROR")


class Reach:
    """Whether ``uri``'s MLflow server answers, as this process last saw it."""

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._down = False
        self._probed = 0.0  # when the last failure or probe was seen
        self._lock = threading.Lock()

    def error(self) -> RegistryUnavailable:
        return RegistryUnavailable(
            f"the model registry (MLflow server at {self.uri}) does not answer: nothing was "
            "read or changed; models already serving keep answering. `maas up` restarts it"
        )

    def mark_down(self) -> None:
        with self._lock:
            self._down, self._probed = True, time.monotonic()

    def ensure(self) -> None:
        """Raise RegistryUnavailable at once while the server is known to be down (one
        probe every PROBE_S looks whether it is back)."""
        with self._lock:
            if not self._down:
                return
            if time.monotonic() - self._probed < PROBE_S:
                raise self.error()
            self._probed = time.monotonic()
        if not self.answers():
            raise self.error()
        with self._lock:
            self._down = False

    def answers(self) -> bool:
        """One health probe, no retries."""
        if not self.uri.startswith("http"):
            return True
        try:
            return httpx.get(f"{self.uri}/health", timeout=PROBE_TIMEOUT_S).status_code == 200
        except httpx.HTTPError:
            return False

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Around MLflow calls: fail fast while down; a call that reached no server
        raises RegistryUnavailable (its cause chained)."""
        self.ensure()
        try:
            yield
        except RegistryUnavailable:
            raise
        except Exception as exc:
            if unreachable(exc) or (not answered(exc) and not self.answers()):
                self.mark_down()
                raise self.error() from exc
            raise

    def wrap(self, client: Any) -> Any:
        """``client`` (an MlflowClient) with every method call guarded."""
        return _Guarded(client, self)


class _Guarded:
    """An MlflowClient whose method calls run inside ``Reach.guard``."""

    def __init__(self, client: Any, reach: Reach) -> None:
        self._client = client
        self._reach = reach

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return self._guarded(attr)

    def _guarded(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(*args: Any, **kwargs: Any) -> Any:
            with self._reach.guard():
                return method(*args, **kwargs)

        return call
