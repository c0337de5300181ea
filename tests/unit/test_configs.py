"""Offline validation of the deployment configs with Ray's own validators.

* Every ``deployments/*.yaml`` is checked: Serve configs (documents with
  ``applications``) with ``ServeDeploySchema`` as ``serve deploy`` does, and
  KubeRay ``RayService`` manifests through their embedded ``serveConfigV2``.
* ``cluster.yaml`` goes through ``prepare_config`` + ``validate_config``, the
  same first steps ``ray up`` takes (both work offline; no cloud SDK needed).

No Ray processes are started: the schemas never import ``import_path``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS_DIR = REPO_ROOT / "deployments"
CLUSTER_YAML = REPO_ROOT / "cluster.yaml"
DEPLOYMENT_FILES = sorted([*DEPLOYMENTS_DIR.glob("*.yaml"), *DEPLOYMENTS_DIR.glob("*.yml")])

EXAMPLE_MODELS = ("sentiment", "tabular", "digits")
GATEWAY_APP = "maas-gateway"
MODEL_IMPORT_PATH = "maas_ray.serving.app:build_app"
GATEWAY_IMPORT_PATH = "maas_ray.gateway.app:build_gateway"
ADMIN_APP = "maas-admin"
ADMIN_IMPORT_PATH = "maas_ray.gateway.management:build_admin"

Config = dict[str, Any]


# --------------------------------------------------------------------------- helpers


def _load_documents(path: Path) -> list[Config]:
    with path.open() as f:
        docs = [doc for doc in yaml.safe_load_all(f) if doc is not None]
    assert docs, f"{path.name} holds no YAML document"
    for doc in docs:
        assert isinstance(doc, dict), f"{path.name}: top level must be a mapping"
    return docs


def _load_one(path: Path) -> Config:
    docs = _load_documents(path)
    assert len(docs) == 1, f"{path.name}: expected one YAML document, got {len(docs)}"
    return docs[0]


def _embedded_serve_config(manifest: Config) -> Config:
    raw = manifest["spec"]["serveConfigV2"]
    assert isinstance(raw, str), "spec.serveConfigV2 must be a YAML string"
    config = yaml.safe_load(raw)
    assert isinstance(config, dict), "spec.serveConfigV2 must hold a mapping"
    return config


def _unknown_keys(config: Config) -> list[str]:
    """Keys the Serve schemas do not know.

    ServeDeploySchema and its nested models ignore unknown keys (forward
    compatibility), so a typo such as ``num_replica`` would pass silently.
    """
    problems: list[str] = []

    def check(data: Any, model: type[BaseModel], where: str) -> None:
        if isinstance(data, dict):
            problems.extend(f"{where}.{key}" for key in sorted(set(data) - set(model.model_fields)))

    check(config, ServeDeploySchema, "<root>")
    check(config.get("http_options"), HTTPOptionsSchema, "http_options")
    for app in config.get("applications") or []:
        app_where = f"applications[{app.get('name')}]"
        check(app, ServeApplicationSchema, app_where)
        for deployment in app.get("deployments") or []:
            dep_where = f"{app_where}.deployments[{deployment.get('name')}]"
            check(deployment, DeploymentSchema, dep_where)
            check(deployment.get("ray_actor_options"), RayActorOptionsSchema, dep_where)
            check(deployment.get("autoscaling_config"), AutoscalingConfig, dep_where)
    return problems


def _validate_serve_config(config: Config) -> ServeDeploySchema:
    """Validate like ``serve deploy``, plus checks the schema leaves out."""
    schema = ServeDeploySchema.model_validate(config)
    unknown = _unknown_keys(config)
    if unknown:
        raise ValueError(f"unknown keys in Serve config: {', '.join(unknown)}")
    # DeploymentSchema types autoscaling_config as Union[Dict, AutoscalingConfig],
    # so a plain dict is accepted unchecked; Serve would only reject it at deploy time.
    for app in schema.applications:
        for deployment in app.deployments:
            if isinstance(deployment.autoscaling_config, dict):
                AutoscalingConfig.model_validate(deployment.autoscaling_config)
    return schema


def _prepared_cluster_config(config: Config) -> Config:
    """Fill in provider defaults as ``ray up`` does; offline for aws/gcp/local."""
    return prepare_config(copy.deepcopy(config))


def _gpu_count(node_type: Config) -> int:
    return int(node_type.get("resources", {}).get("GPU", 0))


def _container_limits(group: Config) -> list[Config]:
    containers = group["template"]["spec"]["containers"]
    return [c.get("resources", {}).get("limits", {}) for c in containers]


def _requests_gpu(group: Config) -> bool:
    return any(int(limits.get("nvidia.com/gpu", 0)) > 0 for limits in _container_limits(group))


@pytest.fixture(scope="module")
def examples() -> Config:
    return _load_one(DEPLOYMENTS_DIR / "examples.yaml")


@pytest.fixture(scope="module")
def rayservice() -> Config:
    return _load_one(DEPLOYMENTS_DIR / "rayservice.yaml")


@pytest.fixture(scope="module")
def cluster_config() -> Config:
    return _load_one(CLUSTER_YAML)


# --------------------------------------------------------------------------- every file


def test_glob_finds_the_deployment_files() -> None:
    names = {path.name for path in DEPLOYMENT_FILES}
    assert len(DEPLOYMENT_FILES) >= 3
    assert {"examples.yaml", "gpu-example.yaml", "rayservice.yaml"} <= names


@pytest.mark.parametrize("path", DEPLOYMENT_FILES, ids=lambda path: path.name)
def test_deployment_file_validates(path: Path) -> None:
    for doc in _load_documents(path):
        if "applications" in doc:
            schema = _validate_serve_config(doc)
            assert schema.applications, f"{path.name}: no applications"
        elif doc.get("kind") == "MaasDeployments":
            from maas_ray.spec import DeploymentFile

            assert DeploymentFile.model_validate(doc).models, f"{path.name}: no models"
        elif doc.get("kind") == "RayService":
            assert doc.get("apiVersion") == "ray.io/v1"
            schema = _validate_serve_config(_embedded_serve_config(doc))
            assert schema.applications, f"{path.name}: serveConfigV2 has no applications"
        else:
            pytest.fail(
                f"{path.name}: document is neither a Serve config (`applications`) nor a "
                f"RayService manifest; teach tests/unit/test_configs.py how to check it"
            )


# --------------------------------------------------------------------------- contents


def test_examples_serve_the_three_models_and_the_gateway(examples: Config) -> None:
    schema = _validate_serve_config(examples)
    assert schema.proxy_location.value == "HeadOnly"
    assert (schema.http_options.host, schema.http_options.port) == ("127.0.0.1", 8000)

    apps = {app.name: app for app in schema.applications}
    assert set(apps) == {*EXAMPLE_MODELS, GATEWAY_APP, ADMIN_APP}
    for name in EXAMPLE_MODELS:
        app = apps[name]
        assert app.import_path == MODEL_IMPORT_PATH
        assert app.route_prefix == f"/v1/models/{name}"
        assert app.args == {"model": name, "version": "1"}
        assert [d.name for d in app.deployments] == ["ModelServer"]
        server = app.deployments[0]
        assert server.ray_actor_options.num_cpus == 0.5
        assert server.max_ongoing_requests > 0
        assert server.is_autoscaling_configured() or server.num_replicas == 1

    gateway = apps[GATEWAY_APP]
    assert gateway.import_path == GATEWAY_IMPORT_PATH
    assert gateway.route_prefix == "/"
    assert gateway.args == {}
    management = apps[ADMIN_APP]
    assert management.import_path == ADMIN_IMPORT_PATH
    assert management.route_prefix == "/v1/admin"


def test_gpu_example_shares_one_gpu_between_two_replicas() -> None:
    schema = _validate_serve_config(_load_one(DEPLOYMENTS_DIR / "gpu-example.yaml"))
    assert [app.name for app in schema.applications] == ["digits"]
    app = schema.applications[0]
    assert app.import_path == MODEL_IMPORT_PATH
    assert app.args == {"model": "digits", "version": "1"}
    (server,) = app.deployments
    assert server.name == "ModelServer"
    assert server.num_replicas == 2
    assert server.ray_actor_options.num_gpus == 0.5
    assert server.ray_actor_options.num_cpus == 1
    assert server.num_replicas * server.ray_actor_options.num_gpus <= 1


def test_rayservice_manifest(rayservice: Config, examples: Config) -> None:
    assert rayservice["apiVersion"] == "ray.io/v1"
    assert rayservice["kind"] == "RayService"

    embedded = _embedded_serve_config(rayservice)
    _validate_serve_config(embedded)
    assert embedded["applications"] == examples["applications"], (
        "serveConfigV2 applications drifted from deployments/examples.yaml"
    )

    cluster = rayservice["spec"]["rayClusterConfig"]
    head = cluster["headGroupSpec"]
    assert head["template"]["spec"]["containers"], "head group has no container"

    groups = cluster["workerGroupSpecs"]
    assert len({group["groupName"] for group in groups}) == len(groups)
    for group in groups:
        assert group["template"]["spec"]["containers"], f"{group['groupName']}: no container"
        assert group.get("minReplicas", 0) <= group.get("replicas", 0) <= group["maxReplicas"]
    assert any(not _requests_gpu(group) for group in groups), "no CPU worker group"
    gpu_groups = [group for group in groups if _requests_gpu(group)]
    assert gpu_groups, "no worker group requests nvidia.com/gpu"


# --------------------------------------------------------------------------- cluster.yaml


def test_cluster_yaml_validates_with_ray(cluster_config: Config) -> None:
    prepared = _prepared_cluster_config(cluster_config)
    validate_config(prepared)

    node_types: dict[str, Config] = prepared["available_node_types"]
    head_type = prepared["head_node_type"]
    assert head_type in node_types
    workers = {name: spec for name, spec in node_types.items() if name != head_type}
    assert any(_gpu_count(spec) == 0 for spec in workers.values()), "no CPU worker type"
    assert any(_gpu_count(spec) >= 1 for spec in workers.values()), "no GPU worker type"
    assert all(spec.get("max_workers", 0) >= 1 for spec in workers.values())


# --------------------------------------------------------------------------- validation bites


def _set_num_replicas(config: Config, value: Any) -> None:
    config["applications"][1]["deployments"][0]["num_replicas"] = value


def _duplicate_route(config: Config) -> None:
    config["applications"][1]["route_prefix"] = config["applications"][0]["route_prefix"]


def _bad_import_path(config: Config) -> None:
    config["applications"][0]["import_path"] = "build_app"


def _bad_proxy_location(config: Config) -> None:
    config["proxy_location"] = "Everywhere"


@pytest.mark.parametrize(
    "breaker",
    [
        lambda c: _set_num_replicas(c, -1),
        lambda c: _set_num_replicas(c, 0),
        _duplicate_route,
        _bad_import_path,
        _bad_proxy_location,
    ],
    ids=["num_replicas=-1", "num_replicas=0", "duplicate-route", "import-path", "proxy"],
)
def test_serve_schema_rejects_broken_config(
    examples: Config, breaker: Callable[[Config], None]
) -> None:
    broken = copy.deepcopy(examples)
    breaker(broken)
    with pytest.raises(ValidationError):
        ServeDeploySchema.model_validate(broken)


def test_unknown_serve_keys_are_caught_although_the_schema_ignores_them(
    examples: Config,
) -> None:
    broken = copy.deepcopy(examples)
    deployment = broken["applications"][0]["deployments"][0]
    deployment["num_replica"] = 2
    ServeDeploySchema.model_validate(broken)  # forward-compatible: silently ignored
    with pytest.raises(ValueError, match="num_replica"):
        _validate_serve_config(broken)


def test_bad_autoscaling_config_is_caught(examples: Config) -> None:
    broken = copy.deepcopy(examples)
    broken["applications"][0]["deployments"][0]["autoscaling_config"] = {
        "min_replicas": 3,
        "max_replicas": 1,
    }
    ServeDeploySchema.model_validate(broken)  # plain dict: not checked by the schema
    with pytest.raises(ValidationError):
        _validate_serve_config(broken)


def _drop_provider(config: Config) -> None:
    del config["provider"]


def _gpu_as_text(config: Config) -> None:
    config["available_node_types"]["gpu-worker"]["resources"]["GPU"] = "one"


def _unknown_top_level_key(config: Config) -> None:
    config["worker_nodes_typo"] = {}


def _node_type_without_resources(config: Config) -> None:
    del config["available_node_types"]["cpu-worker"]["resources"]


@pytest.mark.parametrize(
    "breaker",
    [_drop_provider, _gpu_as_text, _unknown_top_level_key, _node_type_without_resources],
    ids=["no-provider", "gpu-as-text", "unknown-key", "no-resources"],
)
def test_cluster_schema_rejects_broken_config(
    cluster_config: Config, breaker: Callable[[Config], None]
) -> None:
    broken = _prepared_cluster_config(cluster_config)
    breaker(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate_config(broken)


def test_cluster_rejects_unknown_head_node_type(cluster_config: Config) -> None:
    broken = _prepared_cluster_config(cluster_config)
    broken["head_node_type"] = "no-such-type"
    with pytest.raises(ValueError, match="head_node_type"):
        validate_config(broken)
