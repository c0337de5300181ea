"""The route table: matching, paths, and that everything derived from it covers it."""

from __future__ import annotations

import pytest

from maas_ray import routes
from maas_ray.gateway.admin import HANDLERS
from maas_ray.gateway.openapi import openapi_document
from maas_ray.routes import BY_NAME, ROUTES, match, url


def test_names_are_unique_and_each_path_method_once() -> None:
    assert len(BY_NAME) == len(ROUTES)
    assert len({(r.method, r.path) for r in ROUTES}) == len(ROUTES)


@pytest.mark.parametrize(
    ("method", "path", "name", "params"),
    [
        ("POST", "/v1/models/iris/predict", "predict", {"name": "iris"}),
        ("POST", "/v1/models/iris/versions/3/predict", "predict_version", {"version": "3"}),
        ("POST", "/v1/models/iris/explain", "explain", {"name": "iris"}),
        ("POST", "/v1/models/iris/versions/3/explain", "explain_version", {"version": "3"}),
        ("GET", "/v1/models/iris", "model_metadata", {"name": "iris"}),
        ("GET", "/v1/admin/models/iris/history", "history", {"name": "iris"}),
        ("DELETE", "/v1/admin/keys/k1", "revoke_key", {"key_id": "k1"}),
        ("GET", "/healthz", "healthz", {}),
    ],
)
def test_match(method: str, path: str, name: str, params: dict[str, str]) -> None:
    found = match(method, path)
    assert found.route is not None
    assert found.route.name == name
    assert found.allowed
    assert params.items() <= found.params.items()


def test_another_method_is_told_apart_from_no_route() -> None:
    wrong = match("GET", "/v1/models/iris/predict")
    assert wrong.route is BY_NAME["predict"]
    assert not wrong.allowed
    assert wrong.methods == ("POST",)
    assert wrong.required == ("predict:iris",)
    keys = match("PUT", "/v1/admin/keys")
    assert not keys.allowed
    assert set(keys.methods) == {"GET", "POST"}
    assert match("GET", "/v1/models/a/b/c/d").route is None  # a name never spans a '/'
    assert match("GET", "/nothing").required == ()  # unknown: any credential


def test_url_fills_and_quotes_each_parameter() -> None:
    assert url("predict", name="iris") == "/v1/models/iris/predict"
    assert url("predict_version", name="iris", version=2) == "/v1/models/iris/versions/2/predict"
    assert url("show_model", name="a/b c") == "/v1/admin/models/a%2Fb%20c"
    assert routes.model_prefix("iris") == "/v1/models/iris"


def test_every_management_route_has_one_handler() -> None:
    admin = {r.name for r in ROUTES if r.app == "admin"}
    assert set(HANDLERS) == admin


def test_every_operation_of_the_document_resolves() -> None:
    import schemathesis

    schema = schemathesis.openapi.from_dict(openapi_document(model_names=["m"]))
    broken = [r.err() for r in schema.get_all_operations() if not hasattr(r, "ok")]
    assert not broken, broken


def test_the_openapi_document_has_one_operation_per_route() -> None:
    doc = openapi_document()
    operations = {
        (method.upper(), path): op
        for path, item in doc["paths"].items()
        for method, op in item.items()
    }
    assert set(operations) == {(r.method, r.path) for r in ROUTES}
    for route in ROUTES:
        op = operations[(route.method, route.path)]
        assert op["operationId"] == route.name
        if route.scopes is None:
            assert op["security"] == []
        elif not route.scopes:  # any valid credential
            assert op["security"] == [{next(iter(doc["components"]["securitySchemes"])): []}]
            assert "401" in op["responses"]
        else:
            assert {next(iter(s.values()))[0] for s in op["security"]} >= set(route.scopes)
            assert "401" in op["responses"]


def test_predict_documents_every_body_it_takes() -> None:
    doc = openapi_document()
    body = doc["paths"]["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/json", "text/csv", "image/png", "image/jpeg"}
    assert body["image/png"]["schema"] == {"type": "string", "format": "binary"}


def test_no_module_but_the_table_spells_an_api_path() -> None:
    """Issue: every path is declared once; a literal "/v1/..." or "/v2/..." elsewhere in
    the package is a second declaration that the table, the guard and the OpenAPI
    document know nothing of."""
    import ast
    from pathlib import Path

    package = Path(routes.__file__).resolve().parents[1]
    spelled = []
    for path in package.rglob("*.py"):
        if path.parent.name == "routes" or "proto" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if node.value.startswith(("/v1", "/v2")):
                    spelled.append(f"{path.relative_to(package)}:{node.lineno} {node.value!r}")
    assert spelled == []
