"""Security over real HTTP: credentials, scopes, revocation, JWTs, hardened input,
verified loading, audit, loopback binding."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import jwt
import psutil
import pytest
from pydantic import SecretStr

from maas_ray import MaaS, Settings
from maas_ray.registry import Registry
from maas_ray.routes import ROUTES as TABLE
from maas_ray.security.audit import AuditLog
from tests.conftest import FIGURES, auth, maas, post

ROW = {"inputs": ["a wonderful, moving film"]}
NO_AUTH = {"content-type": "application/json"}
# A body for each route that takes one (a route added without: sent with none).
BODIES: dict[str, Any] = {
    "predict": ROW,
    "predict_version": ROW,
    "register": {"model_uri": "runs:/x/model"},
    "deploy": {},
    "promote": {"version": "1"},
    "canary": {"version": "1", "percent": 5},
    "shadow": {"version": "1"},
    "apply": {"kind": "MaasDeployments", "models": []},
    "create_key": {"scopes": ["admin"]},
}
_PARAMS = {"name": "sentiment", "version": "1", "key_id": "abc", "op_id": "abc", "job_id": "abc"}
# Every route of the table but the public ones, and two no route has, as (method,
# path, JSON body or None).
ROUTES = [
    (r.method, r.url(**_PARAMS), BODIES.get(r.name)) for r in TABLE if r.scopes is not None
] + [
    ("POST", "/v1/models/sentiment/feedback", {"labels": ["positive"]}),
    ("GET", "/no/such/route", None),
]


def _call(
    live: Settings, method: str, path: str, body: Any, headers: dict[str, str]
) -> httpx.Response:
    content = None if body is None else json.dumps(body).encode()
    return httpx.request(
        method,
        f"{live.serve_url}{path}",
        content=content,
        headers={"content-type": "application/json", **headers},
        timeout=60,
    )


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def keys(client: MaaS, seeded: Any) -> dict[str, str]:
    """One key per scope set, created over the management API."""
    sets = {
        "predict": ["predict:sentiment"],
        "predict-any": ["predict:*"],
        "feedback": ["feedback:sentiment"],
        "metrics": ["metrics"],
        "deploy": ["deploy"],
        "register": ["register"],
    }
    return {label: client.create_key(s, name=f"sec-{label}").key for label, s in sets.items()}


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_without_a_credential_is_401(
    method: str, path: str, body: Any, live: Settings, seeded: Any
) -> None:
    for headers in ({}, _bearer("maas_nope_nope"), {"authorization": "Basic YWxpY2U6cHc="}):
        resp = _call(live, method, path, body, headers)
        assert resp.status_code == 401, (method, path, headers, resp.status_code, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["code"] == "unauthorized"


def test_public_routes_need_no_credential(live: Settings) -> None:
    public = [r for r in TABLE if r.scopes is None]
    assert {r.name for r in public} >= {"healthz", "v2_live", "v2_ready", "openapi"}
    for route in public:
        path = route.url(asset="console.css" if route.tag == "console" else "swagger-ui.css")
        resp = httpx.request(route.method, f"{live.serve_url}{path}", timeout=30)
        assert resp.status_code == 200, (route.path, resp.status_code, resp.text[:200])


def test_docs_page_loads_everything_from_the_platform(live: Settings) -> None:
    page = httpx.get(f"{live.serve_url}/docs", timeout=30)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    refs = re.findall(r'(?:src|href|url:)\s*=?\s*"([^"]+)"', page.text)
    assert refs, page.text
    assert not [r for r in refs if "//" in r], f"a file from elsewhere: {refs}"
    assert "/openapi.json" in refs
    for ref in refs:  # every file the page needs, from this server, without a credential
        resp = httpx.get(f"{live.serve_url}{ref}", timeout=30)
        assert resp.status_code == 200, (ref, resp.status_code)
    assert len(httpx.get(f"{live.serve_url}/docs/swagger-ui-bundle.js").content) > 100_000
    for name in ("passwd", "..", "__init__.py"):  # only the page's own files
        assert httpx.get(f"{live.serve_url}/docs/{name}", timeout=30).status_code in (401, 404)


# (key, method, path, body, expected status): 403 where the scope is missing; where it
# is there, a status that proves the request got past the check without changing state.
MATRIX = [
    ("predict", "POST", "/v1/models/sentiment/predict", ROW, 200),
    ("predict", "GET", "/v1/models/sentiment", None, 200),
    ("predict", "POST", "/v1/models/tabular/predict", {"inputs": [[0.0] * 30]}, 403),
    ("predict", "GET", "/v1/models/sentiment/traffic", None, 403),
    ("predict", "GET", "/v1/admin/status", None, 403),
    ("predict", "GET", "/v1/admin/whoami", None, 200),  # any key may ask who it is
    ("predict-any", "POST", "/v1/models/sentiment/predict", ROW, 200),
    ("predict-any", "POST", "/v1/models/digits/predict", {"inputs": [[0.0] * 64]}, 200),
    ("predict-any", "POST", "/v1/admin/models/sentiment/promote", {}, 403),
    ("feedback", "POST", "/v1/models/sentiment/predict", ROW, 403),
    ("metrics", "GET", "/v1/models/sentiment/traffic", None, 200),
    ("metrics", "GET", "/v1/admin/status", None, 200),
    ("metrics", "GET", "/v1/admin/models/sentiment/history", None, 200),
    ("metrics", "POST", "/v1/models/sentiment/predict", ROW, 403),
    ("metrics", "POST", "/v1/admin/models/sentiment/promote", {}, 403),
    ("metrics", "GET", "/v1/admin/keys", None, 403),
    ("metrics", "GET", "/v1/admin/audit", None, 403),
    ("deploy", "POST", "/v1/admin/models/sentiment/promote", {}, 422),
    ("deploy", "POST", "/v1/admin/apply", {"kind": "Wrong"}, 422),
    ("deploy", "GET", "/v1/admin/status", None, 200),
    ("deploy", "POST", "/v1/admin/models/sentiment/versions", {"model_uri": "/etc"}, 403),
    ("deploy", "POST", "/v1/admin/keys", {"scopes": ["admin"]}, 403),
    ("deploy", "POST", "/v1/models/sentiment/predict", ROW, 403),
    ("register", "POST", "/v1/admin/models/sentiment/versions", {"model_uri": "/etc"}, 422),
    ("register", "POST", "/v1/admin/models/sentiment/promote", {}, 403),
    ("register", "GET", "/v1/admin/models", None, 200),
    ("admin", "GET", "/v1/admin/keys", None, 200),
    ("admin", "GET", "/v1/admin/audit", None, 200),
    ("admin", "POST", "/v1/admin/keys", {"scopes": ["nope"]}, 422),
    ("admin", "GET", "/openapi.json", None, 200),
]


@pytest.mark.parametrize(("who", "method", "path", "body", "status"), MATRIX)
def test_scope_matrix(
    who: str,
    method: str,
    path: str,
    body: Any,
    status: int,
    keys: dict[str, str],
    live: Settings,
) -> None:
    headers = auth(live) if who == "admin" else _bearer(keys[who])
    resp = _call(live, method, path, body, headers)
    assert resp.status_code == status, (who, method, path, resp.text)
    if status == 403:
        assert resp.json()["code"] == "forbidden"
        assert "insufficient_scope" in resp.headers["www-authenticate"]


def test_revoked_key_is_refused_by_every_replica_within_5s(
    client: MaaS, live: Settings, env: dict[str, str]
) -> None:
    from sklearn.dummy import DummyClassifier

    model = DummyClassifier(strategy="constant", constant="ok").fit([[0.0]], ["ok"])
    client.register("sec2", model, input_example=[[0.0]])
    client.deploy("sec2", "1", num_replicas=2, num_cpus=0.25)
    made = maas(env, "keys", "create", "--scope", "predict:sec2", "--scope", "metrics")
    key = made.stdout.strip().splitlines()[-1]  # printed once, as the last line
    assert key.startswith("maas_")
    url = f"{live.serve_url}/v1/models/sec2/predict"
    with httpx.Client(headers=_bearer(key), timeout=30) as http:
        assert http.post(url, json={"inputs": [[0.0]]}).status_code == 200
        assert http.get(f"{live.serve_url}/v1/admin/status").status_code == 200
        key_id = key.split("_")[1]
        listed = maas(env, "keys", "list").stdout
        assert key_id in listed
        assert key not in listed
        maas(env, "keys", "revoke", key_id)
        revoked_at = time.monotonic()
        # Refused everywhere: both replicas (HAProxy alternates) and the gateway.
        refused_for = Counter[int]()
        while time.monotonic() - revoked_at < 10:
            codes = {http.post(url, json={"inputs": [[0.0]]}).status_code for _ in range(8)}
            codes.add(http.get(f"{live.serve_url}/v1/admin/status").status_code)
            if codes == {401}:
                refused_for[401] += 1
                if refused_for[401] >= 3:
                    break
            else:
                refused_for.clear()
        took = time.monotonic() - revoked_at
    assert refused_for[401] >= 3, "the revoked key still worked 10 s later"
    assert took < 5, took
    FIGURES.append(f"revocation: refused by both replicas and the gateway {took:.2f} s after")
    assert "revoked" in maas(env, "keys", "list").stdout
    client.undeploy("sec2")


def _token(alg: str, key: Any, exp_in_s: float, scope: str = "predict:sentiment", **kw: Any) -> str:
    claims = {"sub": "alice", "scope": scope, "exp": int(time.time() + exp_in_s), **kw}
    headers = {"kid": {"RS256": "rsa-1", "ES256": "ec-1"}[alg]} if alg != "HS256" else None
    return jwt.encode(claims, key, algorithm=alg, headers=headers)


def test_jwt_bearer_tokens(live: Settings, seeded: Any, jwt_keys: dict[str, Any]) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    url = "/v1/models/sentiment/predict"
    secret = jwt_keys["secret"]
    good = {
        "HS256": _token("HS256", secret, 60),
        "RS256": _token("RS256", jwt_keys["RS256"], 60),
        "ES256": _token("ES256", jwt_keys["ES256"], 60),
    }
    for alg, token in good.items():
        resp = post(live, url, ROW, headers=_bearer(token))
        assert resp.status_code == 200, (alg, resp.text)
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    bad = {
        "expired": _token("HS256", secret, -30),
        "wrong secret": _token("HS256", "not-the-secret-of-this-platform-at-all", 60),
        "unknown RSA key": _token("RS256", stranger, 60),
        "alg none": jwt.encode({"sub": "x", "scope": "admin", "exp": 2**31}, None, "none"),
        "no exp": jwt.encode({"sub": "x", "scope": "admin"}, secret, "HS256"),
        "garbage": "not.a.jwt",
    }
    for label, token in bad.items():
        resp = post(live, url, ROW, headers=_bearer(token))
        assert resp.status_code == 401, (label, resp.text)
        if label == "expired":
            assert "expired" in resp.json()["error"]
    narrow = _token("RS256", jwt_keys["RS256"], 60, scope="predict:tabular")
    resp = post(live, url, ROW, headers=_bearer(narrow))
    assert resp.status_code == 403, resp.text
    assert "jwt:alice" in resp.json()["error"]


def test_body_over_the_limit_is_413_before_parsing(live: Settings, seeded: Any) -> None:
    big = b'{"inputs": ["' + b"x" * (live.max_body_bytes + 10) + b'"]}'
    for path in ("/v1/models/sentiment/predict", "/v1/admin/apply"):
        assert post(live, path, big).status_code == 413

    def chunks() -> Any:  # no Content-Length: refused while it streams in
        yield b'{"inputs": ["'
        for _ in range(live.max_body_bytes // 65536 + 2):
            yield b"x" * 65536
        yield b'"]}'

    resp = httpx.post(
        f"{live.serve_url}/v1/models/sentiment/predict",
        content=chunks(),
        headers={**NO_AUTH, **auth(live)},
        timeout=60,
    )
    assert resp.status_code == 413
    assert resp.json()["code"] == "payload_too_large"


def test_wrong_content_type_deep_json_and_non_finite_numbers(live: Settings, seeded: Any) -> None:
    url = "/v1/models/tabular/predict"
    assert post(live, url, b"hello", "text/plain").status_code == 415
    assert post(live, "/v1/admin/apply", b"kind: x", "application/yaml").status_code == 415
    deep = b'{"inputs": ' + b"[" * 200 + b"1.0" + b"]" * 200 + b"}"
    resp = post(live, url, deep)
    assert (resp.status_code, resp.json()["code"]) == (400, "json_too_deep"), resp.text
    row = ", ".join(["0.5"] * 29)  # tabular takes 30 numbers
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        body = b'{"inputs": [[' + literal + b", " + row.encode() + b"]]}"
        resp = post(live, url, body)
        assert resp.status_code == 422, (literal, resp.text)
        assert resp.json()["code"] == "invalid_input"


def test_model_output_with_nan_is_valid_json(client: MaaS, live: Settings) -> None:
    import mlflow.pyfunc
    import numpy as np

    class NotFinite(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            # (no type hints: MLflow would read them as a signature)
            return np.array([np.nan, np.inf, -np.inf, 1.5])[: len(model_input)]

    client.register("nanout", NotFinite(), input_example=np.zeros((4, 1)))
    client.deploy("nanout", "1", num_cpus=0.25)
    resp = post(live, "/v1/models/nanout/predict", {"inputs": [[0.0]] * 4})
    assert resp.status_code == 200, resp.text

    def refuse(token: str) -> None:
        raise AssertionError(f"invalid JSON constant {token}")

    assert json.loads(resp.text, parse_constant=refuse) == {"predictions": [None, None, None, 1.5]}
    client.undeploy("nanout")


def _artifact_dir(registry: Registry, live: Settings, name: str, version: str) -> Path:
    uri = registry.client.get_model_version_download_uri(name, version)
    # mlflow-artifacts:/<path> lives under the server's --artifacts-destination.
    return live.home / "artifacts" / uri.split(":/", 1)[1].lstrip("/")


def test_tampered_artifact_is_refused_and_the_running_version_keeps_serving(
    client: MaaS, registry: Registry, live: Settings, env: dict[str, str]
) -> None:
    from sklearn.dummy import DummyClassifier

    for label in ("one", "two"):
        model = DummyClassifier(strategy="constant", constant=label).fit([[0.0]], [label])
        client.register("tamper", model, input_example=[[0.0]])
    client.promote("tamper", "1")
    client.deploy("tamper", alias="production", num_cpus=0.25)
    folder = _artifact_dir(registry, live, "tamper", "2")
    victim = max((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim.write_bytes(victim.read_bytes() + b"\0")  # one byte more than was registered
    answers: Counter[tuple[int, str]] = Counter()
    stop = threading.Event()

    def poll() -> None:
        with httpx.Client(headers=auth(live), timeout=30) as http:
            while not stop.is_set():
                r = http.post(f"{live.serve_url}/v1/models/tamper/predict", json={"inputs": [[0]]})
                answers[(r.status_code, r.text)] += 1

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        proc = maas(env, "promote", "tamper", "2", check=False)
    finally:
        stop.set()
        poller.join()
    assert proc.returncode == 1, proc.stdout
    assert "changed after registration" in proc.stderr, proc.stderr
    assert set(answers) == {(200, '{"predictions":["one"]}')}, answers
    assert client.model("tamper").aliases["production"] == "1"
    status = maas(env, "status")
    assert "refused" in status.stderr
    assert "changed after registration" in status.stderr
    assert "v1" in status.stdout
    FIGURES.append(f"tampered v2 refused; v1 answered {sum(answers.values())} requests meanwhile")
    client.undeploy("tamper")


def test_audit_records_actions_with_the_key_name_and_outcome(
    client: MaaS, live: Settings, env: dict[str, str], keys: dict[str, str]
) -> None:
    deployer = MaaS(live.model_copy(update={"api_key": SecretStr(keys["deploy"])}))
    with pytest.raises(Exception, match="not found"):
        deployer.promote("sentiment", "999")
    out = maas(env, "audit", "--limit", "200").stdout
    for action in ("register", "deploy", "promote", "key.create"):
        assert action in out, out
    records = AuditLog(live.security_db_url).query(limit=1000)  # read back from disk
    failed = [r for r in records if r.action == "promote" and r.outcome == "error"]
    assert failed
    assert failed[-1].actor.startswith("key:sec-deploy")
    assert failed[-1].status == 404
    assert any(r.action == "key.create" and "sec-predict" in r.detail for r in records)
    secret = re.compile(r"maas_[0-9a-f]{12}_")
    assert not any(secret.search(r.detail) for r in records)  # never a key's secret
    assert (live.security_dir / "security.db").stat().st_mode & 0o077 == 0
    assert live.admin_key_file.stat().st_mode & 0o077 == 0


def test_platform_surfaces_listen_on_loopback_only(live: Settings, seeded: Any) -> None:
    ports = {live.mlflow_port: "MLflow", live.dashboard_port: "Ray dashboard + Jobs API"}
    ports[live.serve_port] = "Serve"
    seen: dict[int, set[str]] = {}
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port in ports:
            seen.setdefault(conn.laddr.port, set()).add(conn.laddr.ip)
    assert set(seen) == set(ports), seen
    for port, ips in seen.items():
        assert ips <= {"127.0.0.1", "::ffff:127.0.0.1"}, (ports[port], ips)


def test_mask_fields_hide_input_values_in_error_messages(client: MaaS, live: Settings) -> None:
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    frame = pd.DataFrame({"name": ["a", "b"], "income": [1.5, 2.5]})
    model = DummyClassifier(strategy="most_frequent").fit(frame, ["x", "y"])
    client.register("masked", model, input_example=frame)
    client.deploy("masked", "1", num_cpus=0.25, mask_fields=["income"])
    record = {"name": "Wei, wei@example.com", "income": "salary-of-wei-9921"}
    resp = post(live, "/v1/models/masked/predict", {"dataframe_records": [record]})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert "salary-of-wei-9921" not in error
    assert "***" in error  # MLflow's message quoted the value; the spec's field is masked
    assert "wei@example.com" not in resp.text
    client.undeploy("masked")
