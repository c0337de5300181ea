"""Credentials, scopes and the audit log as pure logic (no servers)."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import jwt
import pytest

from maas_ray.errors import (
    Forbidden,
    InvalidInput,
    KeyNotFound,
    PlatformUnavailable,
    Unauthorized,
)
from maas_ray.routes import ROUTES
from maas_ray.security import db
from maas_ray.security.audit import AuditLog
from maas_ray.security.auth import Guard
from maas_ray.security.keys import KeyCache, KeyStore, ensure_admin_key, hash_key
from maas_ray.security.scopes import Principal, check_scope, required_scopes
from maas_ray.security.tokens import TokenVerifier
from maas_ray.settings import Settings


@pytest.mark.parametrize(
    ("method", "path", "needed"),
    [
        ("GET", "/healthz", None),
        ("GET", "/v2/health/ready", None),
        ("POST", "/v1/models/iris/predict", ("predict:iris",)),
        ("POST", "/v1/models/iris/versions/3/predict", ("predict:iris",)),
        ("GET", "/v1/models/iris", ("predict:iris",)),
        ("GET", "/v1/models/iris/predict", ("predict:iris",)),  # a 405, behind the same scope
        ("GET", "/v1/models/iris/traffic", ("metrics",)),
        ("GET", "/v1/admin/status", ("metrics", "deploy", "register")),
        ("POST", "/v1/admin/models/iris/versions", ("register",)),
        ("POST", "/v1/admin/models/iris/promote", ("deploy",)),
        ("POST", "/v1/admin/apply", ("deploy",)),
        ("GET", "/v1/admin/keys", ("admin",)),
        ("DELETE", "/v1/admin/keys/abc", ("admin",)),
        ("GET", "/v1/admin/audit", ("admin",)),
        ("GET", "/v1/admin/models/iris", ("metrics", "deploy", "register")),
        ("GET", "/openapi.json", None),
        ("GET", "/anything/else", ()),
        ("POST", "/v1/models/iris/feedback", ("feedback:iris",)),
        ("GET", "/v1/models/iris/monitoring", ("metrics", "predict:iris")),
        ("POST", "/v1/models/a/b/predict", ()),  # a name never spans a '/'
        ("GET", "/metrics", ("metrics",)),
    ],
)
def test_required_scopes(method: str, path: str, needed: tuple[str, ...] | None) -> None:
    assert required_scopes(method, path) == needed


def test_every_route_has_its_scopes_and_only_public_ones_are_open() -> None:
    public = {"healthz", "v2_server", "v2_live", "v2_ready", "openapi", "docs", "docs_asset"}
    public |= {"console", "console_asset"}  # the page; every call it makes carries a key
    assert {r.name for r in ROUTES if r.scopes is None} == public
    # Any valid credential: only the one that says who the credential is.
    assert {r.name for r in ROUTES if r.scopes == ()} == {"whoami"}
    for route in ROUTES:
        for scope in route.scopes or ():
            check_scope(scope.replace("{name}", "m"))  # each one a scope a key may hold


def test_principal_allows() -> None:
    one = Principal("k", frozenset({"predict:iris"}))
    assert one.allows(("predict:iris",))
    assert not one.allows(("predict:wine",))
    assert Principal("k", frozenset({"predict:*"})).allows(("predict:wine",))
    assert not Principal("k", frozenset({"predict:*"})).allows(("feedback:wine",))
    assert Principal("k", frozenset({"admin"})).allows(("deploy",))
    assert Principal("k", frozenset({"metrics"})).allows(("metrics", "deploy"))
    assert Principal("k").allows(())  # any credential


@pytest.mark.parametrize("scope", ["predict:iris", "predict:*", "feedback:a.b-c_1", "admin"])
def test_known_scopes(scope: str) -> None:
    assert check_scope(scope) == scope


@pytest.mark.parametrize("scope", ["predict", "predict:", "root", "deploy:x", "predict:a b"])
def test_unknown_scopes_are_refused(scope: str) -> None:
    with pytest.raises(InvalidInput, match="scope"):
        check_scope(scope)


def _url(folder: Path) -> str:
    return f"sqlite:///{folder / 'security.db'}"


def test_key_store_hashes_lists_revokes_and_survives(tmp_path: Path) -> None:
    store = KeyStore(_url(tmp_path))
    record, key = store.create(["predict:iris"], name="bot", expires_in_days=1)
    assert key.startswith(f"maas_{record.id}_")
    stored = b"".join(f.read_bytes() for f in tmp_path.glob("security.db*"))  # and its WAL
    assert key.split("_", 2)[2].encode() not in stored  # only the hash is stored
    assert hash_key(key).encode() in stored
    assert (tmp_path / "security.db").stat().st_mode & 0o777 == 0o600
    db.engine.cache_clear()  # a new process: survives a restart
    again = KeyStore(_url(tmp_path)).records()
    assert [r.name for r in again] == ["bot"]
    assert "hash" not in again[0].model_dump()
    cache = KeyCache(store, refresh_s=3600)
    assert cache.lookup(key) is not None
    assert cache.lookup(key + "x") is None
    store.revoke(record.id)
    assert cache.lookup(key) is not None  # cached until the next refresh
    cache.refresh_s = 0.05  # (not 0.05 from the start: a slow moment of CI outlasted it)
    time.sleep(0.06)
    assert cache.lookup(key) is None
    assert store.revoke(record.id).revoked_at == store.records()[0].revoked_at  # twice: same
    with pytest.raises(KeyNotFound):
        store.revoke("nope")


def test_a_key_created_after_the_last_refresh_works_at_once(tmp_path: Path) -> None:
    store = KeyStore(_url(tmp_path))
    _, first = store.create(["admin"])
    cache = KeyCache(store, refresh_s=3600)
    assert cache.lookup(first) is not None
    _, second = store.create(["predict:iris"])
    assert cache.lookup(second) is not None  # a miss looks the hash up at once


def test_a_new_guard_asks_the_database_nothing_on_its_first_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica's guard reads the keys as it is made: its first requests, sent the
    moment it joins, do not wait for the database's connection and first read."""
    _, key = KeyStore(_url(tmp_path / "security")).create(["predict:iris"], name="bot")
    guard = Guard(Settings(home=tmp_path, auth_refresh_s=5))
    asked: list[str] = []
    for method in ("stamp", "records", "find"):
        monkeypatch.setattr(guard.keys.store, method, lambda *a, m=method: asked.append(m))
    assert guard.check("POST", "/v1/models/iris/predict", f"Bearer {key}").name == "key:bot"
    assert asked == []
    Guard(Settings(home=tmp_path / "off", auth="off"))  # nothing to read: no database made
    assert not (tmp_path / "off" / "security").exists()


def test_made_up_keys_cost_one_query_each_then_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = KeyStore(_url(tmp_path))
    _, key = store.create(["admin"])
    cache = KeyCache(store, refresh_s=3600)
    assert cache.lookup(key) is not None
    asked: list[str] = []
    real_find = store.find
    monkeypatch.setattr(store, "find", lambda digest: asked.append(digest) or real_find(digest))
    monkeypatch.setattr(KeyCache, "UNKNOWN_KEPT", 2)
    for _ in range(3):
        assert cache.lookup("maas_abc_made-up") is None
    assert len(asked) == 1  # remembered as unknown
    cache.lookup("maas_abc_two")
    cache.lookup("maas_abc_three")  # the oldest unknown is dropped past the bound
    cache.lookup("maas_abc_made-up")
    assert len(asked) == 4


def test_with_the_database_gone_known_keys_work_and_unknown_ones_are_a_503(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "db"
    store = KeyStore(_url(folder))
    _, key = store.create(["admin"])
    cache = KeyCache(store, refresh_s=0.01)
    assert cache.lookup(key) is not None
    shutil.rmtree(folder)
    folder.write_text("not a folder")  # SQLite can open nothing there now
    db.engine.cache_clear()
    time.sleep(0.02)
    assert cache.lookup(key) is not None  # the last keys read stay in use
    with pytest.raises(PlatformUnavailable, match="security database"):
        cache.lookup("maas_abc_def")


def test_keys_and_audit_of_older_releases_move_into_the_database(tmp_path: Path) -> None:
    record = {"id": "a1", "name": "old", "scopes": ["admin"], "created_at": 1.0}
    key_file = tmp_path / "keys.json"
    key_file.write_text(json.dumps({"keys": [record | {"hash": hash_key("maas_a1_s")}]}))
    old = sqlite3.connect(tmp_path / "audit.db")
    old.execute(
        "CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, time REAL, actor TEXT, "
        "action TEXT, target TEXT, outcome TEXT, status INTEGER, detail TEXT)"
    )
    old.execute("INSERT INTO audit VALUES (1, 2.0, 'key:ci', 'deploy', 'iris', 'ok', 200, 'v2')")
    old.commit()
    old.close()
    url = _url(tmp_path)
    assert db.import_files(url, tmp_path) == (1, 1)
    assert db.import_files(url, tmp_path) == (0, 0)  # once
    assert not key_file.exists()
    assert (tmp_path / "keys.json.imported").exists()
    assert (tmp_path / "audit.db.imported").exists()
    assert KeyCache(KeyStore(url), 1).lookup("maas_a1_s") is not None
    assert [(r.actor, r.target, r.detail) for r in AuditLog(url).query()] == [
        ("key:ci", "iris", "v2")
    ]


def test_admin_key_is_created_once_and_again_after_revocation(tmp_path: Path) -> None:
    store = KeyStore(_url(tmp_path / "security"))
    target = tmp_path / "admin.key"
    assert ensure_admin_key(store, target)
    assert target.stat().st_mode & 0o777 == 0o600
    assert not ensure_admin_key(store, target)  # still usable: left alone
    store.revoke(store.records()[0].id)
    assert ensure_admin_key(store, target)
    assert len(store.records()) == 2


def _guard(tmp_path: Path, **extra: Any) -> Guard:
    return Guard(Settings(home=tmp_path, auth_refresh_s=0.05, **extra))


def test_guard_401_and_403(tmp_path: Path) -> None:
    guard = _guard(tmp_path)
    _, key = KeyStore(_url(tmp_path / "security")).create(["predict:iris"], name="bot")
    assert guard.check("GET", "/healthz", None).name == "anonymous"
    who = guard.check("POST", "/v1/models/iris/predict", f"Bearer {key}")
    assert who.name == "key:bot"
    with pytest.raises(Forbidden, match="predict:wine"):
        guard.check("POST", "/v1/models/wine/predict", f"Bearer {key}")
    for header in (None, "", "Bearer", f"Basic {key}", "Bearer maas_x_y", "Bearer a.b.c"):
        with pytest.raises(Unauthorized):
            guard.check("POST", "/v1/models/iris/predict", header)


def test_auth_off_opens_everything_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    guard = _guard(tmp_path, auth="off")
    assert "MAAS_AUTH=off" in caplog.text
    assert guard.check("POST", "/v1/admin/keys", None).allows(("admin",))


def test_hs256_tokens(tmp_path: Path) -> None:
    verifier = TokenVerifier(secret="s" * 40)
    good = jwt.encode({"sub": "ci", "scope": "deploy metrics", "exp": time.time() + 60}, "s" * 40)
    assert verifier.verify(good) == Principal("jwt:ci", frozenset({"deploy", "metrics"}))
    listed = jwt.encode({"sub": "ci", "scp": ["admin"], "exp": time.time() + 60}, "s" * 40)
    assert verifier.verify(listed).scopes == frozenset({"admin"})
    for bad in (
        jwt.encode({"sub": "ci", "exp": time.time() - 5}, "s" * 40),
        jwt.encode({"sub": "ci", "exp": time.time() + 60}, "t" * 40),
        jwt.encode({"sub": "ci"}, "s" * 40),
        jwt.encode({"sub": "ci", "exp": time.time() + 60}, None, "none"),
    ):
        with pytest.raises(Unauthorized):
            verifier.verify(bad)


def test_audience_and_issuer_are_checked() -> None:
    verifier = TokenVerifier(secret="s" * 40, audience="maas", issuer="https://idp")
    claims = {"sub": "a", "exp": time.time() + 60, "aud": "maas", "iss": "https://idp"}
    assert verifier.verify(jwt.encode(claims, "s" * 40)).name == "jwt:a"
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode({**claims, "aud": "other"}, "s" * 40))


def test_rs256_and_es256_against_a_jwks_file(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    algs = jwt.algorithms.get_default_algorithms()
    jwks = {
        "keys": [
            {**json.loads(algs["RS256"].to_jwk(rsa_key.public_key())), "kid": "r"},
            {**json.loads(algs["ES256"].to_jwk(ec_key.public_key())), "kid": "e"},
        ]
    }
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    verifier = TokenVerifier(jwks=str(tmp_path / "jwks.json"))
    claims = {"sub": "svc", "scope": "predict:*", "exp": time.time() + 60}
    for alg, key, kid in (("RS256", rsa_key, "r"), ("ES256", ec_key, "e")):
        token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})
        assert verifier.verify(token).scopes == frozenset({"predict:*"})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode(claims, other, algorithm="RS256", headers={"kid": "r"}))
    with pytest.raises(Unauthorized):  # an HS256 token when no secret is configured
        verifier.verify(jwt.encode(claims, "x" * 40))


def test_audit_log_is_durable_masked_and_filtered(tmp_path: Path) -> None:
    log = AuditLog(_url(tmp_path))
    log.record("key:ci", "deploy", "iris", 200, "version 2")
    log.record("key:ci", "promote", "iris", 404, "not found; mail ops@example.com")
    log.record("key:ci", "deploy", "wine", 200)
    db.engine.cache_clear()
    again = AuditLog(_url(tmp_path))  # reopened, as after a restart
    rows = again.query(target="iris")
    assert [(r.action, r.outcome, r.status) for r in rows] == [
        ("deploy", "ok", 200),
        ("promote", "error", 404),
    ]
    assert "ops@example.com" not in rows[1].detail
    assert [r.target for r in again.query(action="deploy")] == ["iris", "wine"]
    assert len(again.query(limit=1)) == 1


def test_error_bodies_mask_personal_data() -> None:
    from maas_ray.errors import InvalidInput
    from maas_ray.http_io import encode_error

    body = json.loads(
        encode_error(InvalidInput("row 3: 'ops@example.com', '+86 138 0013 8000' do not fit"))
    )
    assert body == {"error": "row 3: '<email>', '<phone>' do not fit", "code": "invalid_input"}
