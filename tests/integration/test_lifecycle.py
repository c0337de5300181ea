"""Lifecycle: promote and rollback under load, history, canary split, shadow agreement."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from maas_ray import MaaS, Settings
from maas_ray.registry import Registry
from tests.conftest import FIGURES, auth, maas

BODY = {"inputs": [[0.0]]}


class Load:
    """A bounded loopback client loop: a few threads posting until stopped.

    ``pause_s`` paces each thread: a test that only needs to see that nothing is
    dropped while it acts should not take the two cores from the replicas it starts.
    """

    def __init__(
        self,
        settings: Settings,
        name: str,
        threads: int = 3,
        body: object = BODY,
        pause_s: float = 0.0,
    ) -> None:
        self.url = f"{settings.serve_url}/v1/models/{name}/predict"
        self.body = body
        self.pause_s = pause_s
        self.headers = auth(settings)
        self.seen: Counter[tuple[int, str | None]] = Counter()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self) -> None:
        deadline = time.monotonic() + 600
        with httpx.Client(timeout=30, headers=self.headers) as http:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    r = http.post(self.url, json=self.body)
                    key = (r.status_code, r.headers.get("x-maas-model-version"))
                except httpx.HTTPError as exc:
                    key = (0, type(exc).__name__)
                with self._lock:
                    self.seen[key] += 1
                if self.pause_s:
                    self._stop.wait(self.pause_s)

    def answered(self) -> int:
        """Requests finished so far (any status)."""
        with self._lock:
            return sum(self.seen.values())

    def more(self, n: int, within_s: float = 60) -> None:
        """Poll until ``n`` more requests have finished (the load keeps going meanwhile)."""
        goal = self.answered() + n
        deadline = time.monotonic() + within_s
        while self.answered() < goal:
            assert time.monotonic() < deadline, f"the load stalled: {dict(self.seen)}"
            time.sleep(0.05)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        self.more(20)  # the load runs before the action starts
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.more(50)  # and keeps being answered right after the action
        finally:
            self._stop.set()
            for t in self._threads:
                t.join()

    def failures(self) -> dict[tuple[int, str | None], int]:
        return {k: n for k, n in self.seen.items() if not 200 <= k[0] < 300}


@pytest.fixture(scope="module")
def lc(client: MaaS) -> Iterator[dict[str, str]]:
    """Three versions of a tiny model whose answer names its version; @production -> v1."""
    from sklearn.dummy import DummyClassifier

    versions = {}
    for label in ("v1", "v2", "v3"):
        model = DummyClassifier(strategy="constant", constant=label).fit(
            [[0.0], [1.0]], [label] * 2
        )
        versions[label] = client.register("lc", model, input_example=[[0.0]]).version
    client.promote("lc", versions["v1"])
    client.deploy("lc", alias="production")
    yield versions
    client.undeploy("lc")


def _answer(settings: Settings, headers: dict[str, str] | None = None) -> tuple[str, str]:
    r = httpx.post(
        f"{settings.serve_url}/v1/models/lc/predict",
        json=BODY,
        headers={**auth(settings), **(headers or {})},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.headers["x-maas-model-version"], r.json()["predictions"][0]


def test_promote_and_rollback_under_load_drop_nothing(
    lc: dict[str, str], live: Settings, env: dict[str, str]
) -> None:
    with Load(live, "lc", pause_s=0.06) as load:  # paced: the replicas it starts keep CPU
        out = maas(env, "promote", "lc", lc["v2"]).stdout
        assert f"v{lc['v2']} 100%" in out
        assert _answer(live) == (lc["v2"], "v2")
        maas(env, "rollback", "lc")
        assert _answer(live) == (lc["v1"], "v1")
    total = sum(load.seen.values())
    assert load.failures() == {}, load.seen
    versions = {k[1] for k in load.seen}
    assert {lc["v1"], lc["v2"]} <= versions, load.seen
    FIGURES.append(f"promote+rollback under load: {total} requests, non-2xx 0, {dict(load.seen)}")


def test_rollback_walks_back_step_by_step_and_history_keeps_it(
    lc: dict[str, str], live: Settings, env: dict[str, str], client: MaaS, registry: Registry
) -> None:
    for label in ("v2", "v3"):
        maas(env, "promote", "lc", lc[label])
    assert _answer(live)[0] == lc["v3"]
    maas(env, "rollback", "lc")
    assert _answer(live)[0] == lc["v2"]
    maas(env, "rollback", "lc")
    assert _answer(live)[0] == lc["v1"]
    assert registry.get_alias("lc", "production") == lc["v1"]
    events = client.history("lc")
    moves = [(e.action, e.from_version, e.to_version) for e in events if e.alias == "production"]
    assert ("rollback", lc["v3"], lc["v2"]) in moves
    assert ("rollback", lc["v2"], lc["v1"]) in moves
    assert all(e.actor for e in events)
    table = maas({**env, "MAAS_ACTOR": "alice"}, "history", "lc").stdout
    assert "promote" in table
    assert "rollback" in table
    # The actor is whoever asked: set one and see it recorded.
    maas({**env, "MAAS_ACTOR": "alice"}, "promote", "lc", lc["v1"], "--alias", "staging")
    # Recorded: the verified key first, then the user who typed the command.
    assert client.history("lc")[-1].actor == "key:admin (alice)"


def test_canary_split_sticky_routing_and_promote_ends_it(
    lc: dict[str, str], live: Settings, env: dict[str, str], registry: Registry
) -> None:
    maas(env, "canary", "lc", "--version", lc["v2"], "--percent", "30", "--sticky-header", "x-user")
    seen: Counter[str] = Counter()
    with httpx.Client(timeout=30, headers=auth(live)) as http:
        for _ in range(1000):
            r = http.post(f"{live.serve_url}/v1/models/lc/predict", json=BODY)
            assert r.status_code == 200, r.text
            version = r.headers["x-maas-model-version"]
            assert r.json()["predictions"][0] == next(k for k, v in lc.items() if v == version)
            seen[version] += 1
    share = seen[lc["v2"]] / 10
    FIGURES.append(f"canary 30%: observed {share:.1f}% over 1000 requests ({dict(seen)})")
    assert 25 <= share <= 35, seen
    for user in ("ann", "bob", "cy", "dee", "eve"):
        got = {_answer(live, {"x-user": user})[0] for _ in range(10)}
        assert len(got) == 1, (user, got)
    status = maas(env, "status", "lc").stdout
    assert "(canary)" in status
    assert "canary" in status
    maas(env, "promote", "lc", lc["v2"])
    spec = registry.get_spec("lc")
    assert spec is not None
    assert "canary" not in spec
    assert {_answer(live)[0] for _ in range(30)} == {lc["v2"]}


def test_rollback_ends_a_canary_with_all_traffic_back(
    lc: dict[str, str], live: Settings, env: dict[str, str]
) -> None:
    primary = _answer(live)[0]
    maas(env, "canary", "lc", "--version", lc["v3"], "--percent", "50")
    assert lc["v3"] in {_answer(live)[0] for _ in range(40)}
    maas(env, "rollback", "lc")
    assert {_answer(live)[0] for _ in range(40)} == {primary}


def test_shadow_answers_with_primary_and_records_agreement(
    lc: dict[str, str], live: Settings, env: dict[str, str], client: MaaS, registry: Registry
) -> None:
    primary = _answer(live)[0]
    maas(env, "shadow", "lc", "--version", lc["v3"])
    for _ in range(50):
        assert _answer(live)[0] == primary
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stats = client.traffic("lc").agreement
        if stats is not None and stats.requests >= 50:
            break
        time.sleep(0.5)
    assert stats is not None
    assert stats.requests >= 50
    assert stats.rows >= 50
    assert stats.agree == 0  # v3 always says "v3", the primary never does
    detail = maas(env, "status", "lc").stdout
    assert "0.0% of" in detail
    assert "shadow" in detail
    maas(env, "rollback", "lc")  # ends the shadow
    assert registry.get_spec("lc").get("shadow") is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("promote", "lc", "99"), 1, "version 99"),
        (("promote", "nope", "1"), 1, "not found"),
        (("canary", "lc", "--version", "1", "--percent", "150"), 2, "--percent"),
        (("canary", "lc", "--version", "99", "--percent", "10"), 1, "version 99"),
        (("canary", "nope", "--version", "1", "--percent", "10"), 1, "nope"),
        (("shadow", "lc", "--version", "1", "--percent", "-5"), 2, "--percent"),
        (("history", "nope"), 1, "not found"),
    ],
)
def test_bad_lifecycle_commands_are_one_line_errors(
    args: tuple[str, ...], code: int, words: str, lc: dict[str, str], env: dict[str, str]
) -> None:
    proc = maas(env, *args, check=False)
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    assert words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_rollback_with_no_history_is_an_error(client: MaaS, env: dict[str, str]) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier().fit([[0.0], [1.0]], [0, 1])
    client.register("fresh", model, input_example=[[0.0]])
    proc = maas(env, "rollback", "fresh", check=False)
    assert proc.returncode == 1
    assert "no earlier version" in proc.stderr
