"""Offline validation of the deployment configs with Ray's own validators.

* Every ``deployments/*.yaml`` is checked: Serve configs (documents with
  ``applications``) with ``ServeDeploySchema`` as ``serve deploy`` does, and
  KubeRay ``RayService`` manifests through their embedded ``serveConfigV2`` and a
  structural schema of the manifest itself (``RAYSERVICE_SCHEMA``).
* ``deployments/examples.yaml`` is what the platform's own control plane
  (``ControlPlane.desired``) builds from ``deployments/models.yaml`` with version 1 of
  each model: every model ``examples/seed.py`` registers, the shared pool, the
  gateway and the management API. The RayService serves the same applications.
* Every ``import_path`` is imported and called with its ``args`` as Serve's build
  step does (``import_attr`` + the builder), which binds deployments without Ray.
* ``cluster.yaml`` goes through ``prepare_config`` + ``validate_config``, the
  same first steps ``ray up`` takes (both work offline; no cloud SDK needed); its
  setup installs this repository on every node type and its Ray runs with the token.

No Ray processes are started.
"""

from __future__ import annotations

import copy
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import BaseModel, ValidationError
from ray._common.utils import import_attr
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.serve import Application
from ray.serve._private.api import call_user_app_builder_with_args_if_necessary
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import (
    DeploymentSchema,
    HTTPOptionsSchema,
    RayActorOptionsSchema,
    ServeApplicationSchema,
    ServeDeploySchema,
)

from examples.seed import EXAMPLES as SEEDED_MODELS
from maas_ray.control.applications import (
    ADMIN_APP_IMPORT,
    GATEWAY_APP_IMPORT,
    GRPC_SERVICER,
    MODEL_APP_IMPORT,
    SHARED_APP_IMPORT,
)
from maas_ray.control.deployer import ControlPlane
from maas_ray.routes import ADMIN_PREFIX, model_prefix
from maas_ray.settings import Settings
from maas_ray.spec import (
    ADMIN_APP,
    GATEWAY_APP,
    MODEL_DEPLOYMENT,
    SHARED_APP,
    SHARED_DEPLOYMENT,
    DeploymentFile,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS_DIR = REPO_ROOT / "deployments"
CLUSTER_YAML = REPO_ROOT / "cluster.yaml"
DEPLOYMENT_FILES = sorted([*DEPLOYMENTS_DIR.glob("*.yaml"), *DEPLOYMENTS_DIR.glob("*.yml")])

# The version the static files pin: the first one `python -m examples.seed` registers.
PINNED_VERSION = "1"
# What the nodes' MAAS_TRACKING_URI would say; the static files name no tracking URI.
TRACKING_URI = "http://mlflow.test:5000"

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


def _serve_configs() -> list[tuple[str, Config]]:
    """Every Serve config in deployments/: ``(where, config)``."""
    found = []
    for path in DEPLOYMENT_FILES:
        for doc in _load_documents(path):
            if "applications" in doc:
                found.append((path.name, doc))
            elif doc.get("kind") == "RayService":
                found.append((f"{path.name}:serveConfigV2", _embedded_serve_config(doc)))
    return found


SERVE_CONFIGS = _serve_configs()


def _app(config: Config, name: str) -> Config:
    """The application ``name`` of a Serve config (a dict)."""
    (app,) = [app for app in config["applications"] if app["name"] == name]
    return app


def _build(app: Config) -> Application:
    """Import and call ``app``'s builder as Serve's build step does
    (``build_serve_application``: ``import_attr``, then the builder with ``args``), and
    check its ``deployments`` overrides name a deployment the builder made."""
    builder = import_attr(app["import_path"])
    assert callable(builder), f"{app['name']}: {app['import_path']} is not callable"
    built = call_user_app_builder_with_args_if_necessary(builder, app.get("args") or {})
    assert isinstance(built, Application), f"{app['name']}: the builder returned {built!r}"
    made = built._bound_deployment.name
    for override in app.get("deployments") or []:
        assert override["name"] == made, (
            f"{app['name']}: `deployments` names {override['name']!r}, the builder makes {made!r}"
        )
    return built


class _StoredSpecs:
    """The registry as `maas apply deployments/models.yaml` leaves it after
    `python -m examples.seed`: the file's specs stored, @production at version 1."""

    def __init__(self, specs: dict[str, Config]) -> None:
        self.specs = specs

    def list_specs(self) -> dict[str, Config]:
        return dict(self.specs)

    def list_specs_and_aliases(self) -> tuple[dict[str, Config], dict[str, dict[str, str]]]:
        return dict(self.specs), {}  # no aliases listed: each is asked of resolve()

    def resolve(
        self, name: str, version: str | None = None, alias: str | None = None
    ) -> SimpleNamespace:
        return SimpleNamespace(version=version or PINNED_VERSION)


def _container_env(container: Config) -> dict[str, Config]:
    return {var["name"]: var for var in container.get("env") or []}


def _pod_specs(rayservice: Config) -> dict[str, Config]:
    """Each group's pod spec by group name (the head as ``head``)."""
    cluster = rayservice["spec"]["rayClusterConfig"]
    pods = {"head": cluster["headGroupSpec"]["template"]["spec"]}
    for group in cluster["workerGroupSpecs"]:
        pods[group["groupName"]] = group["template"]["spec"]
    return pods


def _setup_commands(prepared: Config, node_type: str) -> list[str]:
    """The commands ``ray up`` (or the autoscaler) runs on a node of ``node_type``
    before Ray starts: a node type's own ``worker_setup_commands`` replaces the merged
    global ones (autoscaler.py: _get_node_type_specific_fields)."""
    if node_type == prepared["head_node_type"]:
        return list(prepared["head_setup_commands"])
    own = prepared["available_node_types"][node_type]
    return list(own.get("worker_setup_commands", prepared["worker_setup_commands"]))


@pytest.fixture(scope="module")
def models_file() -> Config:
    return _load_one(DEPLOYMENTS_DIR / "models.yaml")


@pytest.fixture(scope="module")
def platform_config(tmp_path_factory: pytest.TempPathFactory, models_file: Config) -> Config:
    """The Serve config the platform itself PUTs for models.yaml's specs (what `maas up`
    restores and every management action builds), with `tracking_uri` taken out of
    every `args`: a static file leaves it to MAAS_TRACKING_URI."""
    defaults = Settings.model_fields
    settings = Settings(
        home=tmp_path_factory.mktemp("maas-home"),
        tracking_uri=TRACKING_URI,
        host="127.0.0.1",
        serve_port=8000,
        grpc_port=9000,
        access_log=False,
        shared_replicas=defaults["shared_replicas"].default,
        shared_num_cpus=defaults["shared_num_cpus"].default,
    )
    specs = {spec["model"]: spec for spec in models_file["models"]}
    config, targets = ControlPlane(settings, registry=_StoredSpecs(specs)).desired()
    assert set(targets) == set(specs)
    for app in config["applications"]:
        assert app["args"].pop("tracking_uri") == TRACKING_URI
    return config


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
            assert DeploymentFile.model_validate(doc).models, f"{path.name}: no models"
        elif doc.get("kind") == "RayService":
            jsonschema.validate(doc, RAYSERVICE_SCHEMA)
            schema = _validate_serve_config(_embedded_serve_config(doc))
            assert schema.applications, f"{path.name}: serveConfigV2 has no applications"
        else:
            pytest.fail(
                f"{path.name}: document is neither a Serve config (`applications`) nor a "
                f"RayService manifest; teach tests/unit/test_configs.py how to check it"
            )


# --------------------------------------------------------------------------- RayService schema

# The RayService manifest's structure, written here rather than vendored: KubeRay's CRD
# (ray.io_rayservices.yaml) is about 1 MB. Field names are those of KubeRay v1.7.0's
# ray.io/v1 CRD; a name outside them is a typo kubectl's strict field validation would
# refuse. Objects the platform does not fill in (probes, affinity, ...) are left open.
_OBJECT: Config = {"type": "object"}
_STRING: Config = {"type": "string"}
_STRING_MAP: Config = {"type": "object", "additionalProperties": {"type": "string"}}
_QUANTITIES: Config = {
    "type": "object",
    "additionalProperties": {
        "anyOf": [
            {"type": "integer", "minimum": 0},
            {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?$"},
        ]
    },
}
_DNS_LABEL: Config = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"}
_KEY_REF: Config = {
    "type": "object",
    "required": ["name", "key"],
    "additionalProperties": False,
    "properties": {"name": _DNS_LABEL, "key": _STRING, "optional": {"type": "boolean"}},
}
_ENV_VAR: Config = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"},
        "value": _STRING,  # Kubernetes takes strings only: "true", not true
        "valueFrom": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                "secretKeyRef": _KEY_REF,
                "configMapKeyRef": _KEY_REF,
                "fieldRef": _OBJECT,
                "resourceFieldRef": _OBJECT,
            },
        },
    },
    "not": {"required": ["value", "valueFrom"]},
}
_CONTAINER: Config = {
    "type": "object",
    "required": ["name", "image"],
    "propertyNames": {
        "enum": [
            *("args", "command", "env", "envFrom", "image", "imagePullPolicy", "lifecycle"),
            *("livenessProbe", "name", "ports", "readinessProbe", "resizePolicy"),
            *("resources", "restartPolicy", "restartPolicyRules", "securityContext"),
            *("startupProbe", "stdin", "stdinOnce", "terminationMessagePath"),
            *("terminationMessagePolicy", "tty", "volumeDevices", "volumeMounts", "workingDir"),
        ]
    },
    "properties": {
        "name": _DNS_LABEL,
        "image": {"type": "string", "minLength": 1},
        "env": {"type": "array", "items": _ENV_VAR},
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["containerPort"],
                "additionalProperties": False,
                "properties": {
                    "containerPort": {"type": "integer", "minimum": 1, "maximum": 65535},
                    "name": {"type": "string", "maxLength": 15},
                    "protocol": {"enum": ["TCP", "UDP", "SCTP"]},
                },
            },
        },
        "resources": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"requests": _QUANTITIES, "limits": _QUANTITIES},
        },
        "volumeMounts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "mountPath"],
                "additionalProperties": False,
                "properties": {
                    "name": _DNS_LABEL,
                    "mountPath": {"type": "string", "pattern": "^/"},
                    "subPath": _STRING,
                    "readOnly": {"type": "boolean"},
                },
            },
        },
    },
}
_POD_TEMPLATE: Config = {
    "type": "object",
    "required": ["spec"],
    "additionalProperties": False,
    "properties": {
        "metadata": _OBJECT,
        "spec": {
            "type": "object",
            "required": ["containers"],
            "propertyNames": {
                "enum": [
                    *("activeDeadlineSeconds", "affinity", "automountServiceAccountToken"),
                    *("containers", "dnsConfig", "dnsPolicy", "enableServiceLinks"),
                    *("ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork", "hostPID"),
                    *("hostUsers", "hostname", "hostnameOverride", "imagePullSecrets"),
                    *("initContainers", "nodeName", "nodeSelector", "os", "overhead"),
                    *("preemptionPolicy", "priority", "priorityClassName", "readinessGates"),
                    *("resourceClaims", "resources", "restartPolicy", "runtimeClassName"),
                    *("schedulerName", "schedulingGates", "schedulingGroup", "securityContext"),
                    *("serviceAccount", "serviceAccountName", "setHostnameAsFQDN"),
                    *("shareProcessNamespace", "subdomain", "terminationGracePeriodSeconds"),
                    *("tolerations", "topologySpreadConstraints", "volumes"),
                ]
            },
            "properties": {
                "containers": {"type": "array", "minItems": 1, "items": _CONTAINER},
                "volumes": {
                    "type": "array",
                    "items": {"type": "object", "required": ["name"], "minProperties": 2},
                },
                "tolerations": {"type": "array", "items": _OBJECT},
                "nodeSelector": _STRING_MAP,
            },
        },
    },
}
_REPLICAS: Config = {"type": "integer", "minimum": 0}
RAYSERVICE_SCHEMA: Config = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayService"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": _DNS_LABEL, "namespace": _DNS_LABEL},
        },
        "spec": {
            "type": "object",
            "required": ["serveConfigV2", "rayClusterConfig"],
            "propertyNames": {
                "enum": [
                    *("deploymentUnhealthySecondThreshold", "excludeHeadPodFromServeSvc"),
                    *("managedBy", "rayClusterConfig", "rayClusterDeletionDelaySeconds"),
                    *("serveConfigV2", "serveService", "serviceUnhealthySecondThreshold"),
                    *("suspend", "upgradeStrategy"),
                ]
            },
            "properties": {
                "serveConfigV2": {"type": "string", "minLength": 1},
                "rayClusterConfig": {
                    "type": "object",
                    "required": ["rayVersion", "headGroupSpec", "workerGroupSpecs"],
                    "propertyNames": {
                        "enum": [
                            *("authOptions", "autoscalerOptions", "enableInTreeAutoscaling"),
                            *("gcsFaultToleranceOptions", "headGroupSpec"),
                            *("headServiceAnnotations", "historyServerOptions", "managedBy"),
                            *("networkPolicy", "rayVersion", "suspend", "tlsOptions"),
                            *("upgradeStrategy", "workerGroupSpecs"),
                        ]
                    },
                    "properties": {
                        "rayVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
                        "enableInTreeAutoscaling": {"type": "boolean"},
                        "authOptions": {
                            "type": "object",
                            "additionalProperties": False,
                            "properties": {
                                "mode": {"enum": ["disabled", "token"]},
                                "secretName": _DNS_LABEL,
                                "enableK8sTokenAuth": {"type": "boolean"},
                            },
                        },
                        "headGroupSpec": {
                            "type": "object",
                            "required": ["template"],
                            "propertyNames": {
                                "enum": [
                                    *("enableIngress", "headService", "ingressOptions"),
                                    *("labels", "rayStartParams", "resources", "serviceType"),
                                    "template",
                                ]
                            },
                            "properties": {
                                "rayStartParams": _STRING_MAP,
                                "template": _POD_TEMPLATE,
                            },
                        },
                        "workerGroupSpecs": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "required": ["groupName", "maxReplicas", "minReplicas", "template"],
                                "propertyNames": {
                                    "enum": [
                                        *("groupName", "idleTimeoutSeconds", "labels"),
                                        *("maxReplicas", "minReplicas", "numOfHosts"),
                                        *("priority", "rayStartParams", "replicas"),
                                        *("resources", "scaleStrategy", "suspend", "template"),
                                    ]
                                },
                                "properties": {
                                    "groupName": _DNS_LABEL,
                                    "replicas": _REPLICAS,
                                    "minReplicas": _REPLICAS,
                                    "maxReplicas": _REPLICAS,
                                    "rayStartParams": _STRING_MAP,
                                    "template": _POD_TEMPLATE,
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


# --------------------------------------------------------------------------- contents


def test_models_file_has_a_spec_for_every_seeded_model(models_file: Config) -> None:
    specs = DeploymentFile.model_validate(models_file).models
    missing = set(SEEDED_MODELS) - {spec.model for spec in specs}
    assert not missing, f"deployments/models.yaml has no spec for {sorted(missing)}"


def test_examples_are_what_the_platform_builds(examples: Config, platform_config: Config) -> None:
    """The platform's own Serve config for models.yaml, versions pinned at 1."""
    names = [app["name"] for app in examples["applications"]]
    assert names == [app["name"] for app in platform_config["applications"]]
    for name in names:
        assert _app(examples, name) == _app(platform_config, name), (
            f"deployments/examples.yaml: application {name} differs from what "
            "maas_ray/control/applications.py builds for deployments/models.yaml"
        )
    assert examples == platform_config


def test_examples_serve_every_seeded_model_and_the_platform_apps(
    examples: Config, models_file: Config
) -> None:
    schema = _validate_serve_config(examples)
    CPUS = {m["model"]: m.get("num_cpus", 0.5) for m in models_file["models"]}  # noqa: N806
    assert schema.proxy_location.value == "HeadOnly"
    assert (schema.http_options.host, schema.http_options.port) == ("127.0.0.1", 8000)
    assert schema.grpc_options.grpc_servicer_functions == [GRPC_SERVICER]

    apps = {app.name: app for app in schema.applications}
    assert {*SEEDED_MODELS, GATEWAY_APP, ADMIN_APP, SHARED_APP} <= set(apps)
    for name in SEEDED_MODELS:
        app = apps[name]
        assert app.import_path == MODEL_APP_IMPORT
        assert app.route_prefix == model_prefix(name)
        assert (app.args["model"], app.args["version"]) == (name, PINNED_VERSION)
        (server,) = app.deployments
        assert server.name == MODEL_DEPLOYMENT
        assert server.ray_actor_options.num_cpus == CPUS[name]
        assert server.max_ongoing_requests > 0
        assert server.is_autoscaling_configured() or server.num_replicas == 1

    gateway, management, pool = apps[GATEWAY_APP], apps[ADMIN_APP], apps[SHARED_APP]
    assert (gateway.import_path, gateway.route_prefix) == (GATEWAY_APP_IMPORT, "/")
    assert (management.import_path, management.route_prefix) == (ADMIN_APP_IMPORT, ADMIN_PREFIX)
    assert (pool.import_path, pool.route_prefix) == (SHARED_APP_IMPORT, None)
    assert [d.name for d in pool.deployments] == [SHARED_DEPLOYMENT]
    for app in schema.applications:  # left to MAAS_TRACKING_URI on the nodes
        assert "tracking_uri" not in app.args, f"{app.name}: a tracking URI in a shared file"


def test_gpu_example_shares_one_gpu_between_two_replicas() -> None:
    schema = _validate_serve_config(_load_one(DEPLOYMENTS_DIR / "gpu-example.yaml"))
    assert [app.name for app in schema.applications] == ["digits"]
    app = schema.applications[0]
    assert app.import_path == MODEL_APP_IMPORT
    assert app.args == {"model": "digits", "version": PINNED_VERSION}
    (server,) = app.deployments
    assert server.name == MODEL_DEPLOYMENT
    assert server.num_replicas == 2
    assert server.ray_actor_options.num_gpus == 0.5
    assert server.ray_actor_options.num_cpus == 1
    assert server.num_replicas * server.ray_actor_options.num_gpus <= 1


@pytest.mark.parametrize(("where", "config"), SERVE_CONFIGS, ids=[w for w, _ in SERVE_CONFIGS])
def test_every_import_path_builds_its_application(
    where: str, config: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each builder imports and takes its args; a missing tracking URI is MAAS_TRACKING_URI's."""
    monkeypatch.setenv("MAAS_TRACKING_URI", TRACKING_URI)
    for path in (config.get("grpc_options") or {}).get("grpc_servicer_functions") or []:
        assert callable(import_attr(path)), f"{where}: {path} is not callable"
    for app in config["applications"]:
        built = _build(app)
        tracking = (app.get("args") or {}).get("tracking_uri", TRACKING_URI)
        assert built._bound_deployment.init_args[-1] == tracking, app["name"]


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"import_path": "maas_ray.serving.app:no_such_builder"}, AttributeError),
        ({"import_path": "maas_ray.no_such_module:build_app"}, ModuleNotFoundError),
        ({"args": {"model": "digits", "version": "1", "versoin": "2"}}, ValidationError),
        ({"deployments": [{"name": "SharedPool", "num_replicas": 1}]}, AssertionError),
    ],
    ids=["attribute", "module", "args", "deployment-name"],
)
def test_a_broken_builder_reference_is_caught(
    examples: Config, change: Config, error: type[Exception]
) -> None:
    app = {**copy.deepcopy(_app(examples, "digits")), **change}
    with pytest.raises(error):
        _build(app)


def test_rayservice_manifest(rayservice: Config, examples: Config) -> None:
    jsonschema.validate(rayservice, RAYSERVICE_SCHEMA)

    embedded = _embedded_serve_config(rayservice)
    _validate_serve_config(embedded)
    assert embedded["applications"] == examples["applications"], (
        "serveConfigV2 applications drifted from deployments/examples.yaml"
    )
    assert set(SEEDED_MODELS) <= {app["name"] for app in embedded["applications"]}
    assert embedded["http_options"]["host"] == "0.0.0.0", "the Serve Service cannot reach it"
    # KubeRay's Serve Service carries the head container's ports named serve or serve-*.
    (head,) = _pod_specs(rayservice)["head"]["containers"]
    serving = {p["containerPort"] for p in head["ports"] if re.match(r"serve(-|$)", p["name"])}
    assert serving == {embedded["http_options"]["port"], embedded["grpc_options"]["port"]}

    cluster = rayservice["spec"]["rayClusterConfig"]
    assert cluster["rayVersion"] == "2.60.0"
    groups = cluster["workerGroupSpecs"]
    assert len({group["groupName"] for group in groups}) == len(groups)
    for group in groups:
        assert group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    assert any(not _requests_gpu(group) for group in groups), "no CPU worker group"
    gpu_groups = [group for group in groups if _requests_gpu(group)]
    assert gpu_groups, "no worker group requests nvidia.com/gpu"
    for group in gpu_groups:
        images = {c["image"] for c in group["template"]["spec"]["containers"]}
        assert all("gpu" in image for image in images), f"{group['groupName']}: a CPU image"


def test_every_rayservice_pod_has_what_the_platform_needs(rayservice: Config) -> None:
    """The image with the project, MLflow's address, Ray's token from the Secret KubeRay
    also uses, the token as MAAS_HOME/ray.token, and the head's Service as MAAS_HOST."""
    auth = rayservice["spec"]["rayClusterConfig"]["authOptions"]
    assert auth["mode"] == "token"
    token_secret = auth["secretName"]
    head_service = f"{rayservice['metadata']['name']}-head-svc"  # KubeRay's, for a RayService

    for group, pod in _pod_specs(rayservice).items():
        volumes = {volume["name"]: volume for volume in pod.get("volumes") or []}
        for container in pod["containers"]:
            where = f"{group}/{container['name']}"
            assert not container["image"].startswith("rayproject/"), (
                f"{where}: a stock Ray image has no maas_ray in it"
            )
            env = _container_env(container)
            assert env["MAAS_TRACKING_URI"]["value"].startswith(("http://", "https://")), where
            assert env["MAAS_HOST"]["value"] == head_service, where
            assert env["RAY_AUTH_MODE"]["value"] == "token", where
            token_ref = env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]
            assert (token_ref["name"], token_ref["key"]) == (token_secret, "auth_token"), where
            assert "valueFrom" in env["MAAS_MONITOR_KEY"], f"{where}: the log key from a Secret"
            assert env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"]["value"] == "true", where

            home = env["MAAS_HOME"]["value"]
            mounts = {m["mountPath"]: m for m in container.get("volumeMounts") or []}
            token_mount = mounts[f"{home}/ray.token"]
            source = volumes[token_mount["name"]]["secret"]
            assert source["secretName"] == token_secret, where
            items = {item["path"]: item["key"] for item in source["items"]}
            assert items[token_mount["subPath"]] == "auth_token", where
            assert "emptyDir" in volumes[mounts[home]["name"]], f"{where}: MAAS_HOME not writable"


@pytest.mark.parametrize(
    "breaker",
    [
        lambda m: m["spec"]["rayClusterConfig"]["workerGroupSpecs"][0].update(maxReplica=3),
        lambda m: m["spec"]["rayClusterConfig"]["headGroupSpec"].update(
            rayStartParams={"num-cpus": 0}
        ),
        lambda m: _pod_specs(m)["head"]["containers"][0]["env"].append(
            {"name": "MAAS_AUTH", "value": True}
        ),
        lambda m: _pod_specs(m)["head"]["containers"][0].update(imagee="x"),
        lambda m: m["spec"]["rayClusterConfig"].update(authOptions={"mode": "tokens"}),
        lambda m: m.update(apiVersion="ray.io/v1alpha1"),
    ],
    ids=["worker-typo", "int-start-param", "bool-env", "container-typo", "auth-mode", "api"],
)
def test_rayservice_schema_rejects_broken_manifest(
    rayservice: Config, breaker: Callable[[Config], None]
) -> None:
    broken = copy.deepcopy(rayservice)
    breaker(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, RAYSERVICE_SCHEMA)


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


def test_cluster_yaml_installs_this_project_on_every_node(cluster_config: Config) -> None:
    """file_mounts copies the repository; each node type's setup pip-installs it, after
    torch: the CPU build on CPU nodes, the CUDA build (not the CPU index) on GPU nodes."""
    prepared = _prepared_cluster_config(cluster_config)
    mounted = [
        remote
        for remote, local in prepared["file_mounts"].items()
        if (REPO_ROOT / local).resolve() == REPO_ROOT  # `ray up` runs from the repository
    ]
    assert mounted, "file_mounts does not copy the repository to the nodes"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["name"]
    assert project == "maas-ray"

    cpu_index = "download.pytorch.org/whl/cpu"
    for node_type, spec in prepared["available_node_types"].items():
        commands = _setup_commands(prepared, node_type)
        project_install = re.compile(
            r"pip install\b.*\s(" + "|".join(map(re.escape, mounted)) + r")/?$"
        )
        installs = [i for i, command in enumerate(commands) if project_install.search(command)]
        assert installs, f"{node_type}: setup does not pip-install {mounted}"
        torch = [i for i, command in enumerate(commands) if "torch==" in command]
        assert torch, f"{node_type}: setup installs no torch"
        assert torch[0] < installs[0], f"{node_type}: torch not installed before the project"
        from_cpu_index = cpu_index in commands[torch[0]]
        assert from_cpu_index == (_gpu_count(spec) == 0), (
            f"{node_type}: torch's {'CPU' if from_cpu_index else 'CUDA'} build on a "
            f"{'GPU' if _gpu_count(spec) else 'CPU'} node"
        )


def test_cluster_yaml_starts_ray_with_the_token_everywhere(cluster_config: Config) -> None:
    prepared = _prepared_cluster_config(cluster_config)
    mounts = prepared["file_mounts"]
    assert "~/.maas/ray.token" in mounts, "the token is not copied to MAAS_HOME on the nodes"
    assert "~/.maas/maas.env" in mounts, "the nodes get no MAAS_TRACKING_URI"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        (start,) = [command for command in prepared[key] if " start " in f" {command} "]
        for needed in (
            "RAY_AUTH_MODE=token",
            "RAY_AUTH_TOKEN_PATH=$HOME/.maas/ray.token",
            ". ~/.maas/maas.env",
            "MAAS_HOST=",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION=true",
            "~/maas-venv/bin/ray start",
        ):
            assert needed in start, f"{key}: no {needed!r}"


# --------------------------------------------------------------------------- validation bites


def _set_num_replicas(config: Config, value: Any) -> None:
    _app(config, "tabular")["deployments"][0]["num_replicas"] = value


def _duplicate_route(config: Config) -> None:
    _app(config, "tabular")["route_prefix"] = _app(config, "digits")["route_prefix"]


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
    deployment = _app(broken, "digits")["deployments"][0]
    deployment["num_replica"] = 2
    ServeDeploySchema.model_validate(broken)  # forward-compatible: silently ignored
    with pytest.raises(ValueError, match="num_replica"):
        _validate_serve_config(broken)


def test_bad_autoscaling_config_is_caught(examples: Config) -> None:
    broken = copy.deepcopy(examples)
    _app(broken, "sentiment")["deployments"][0]["autoscaling_config"] = {
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
