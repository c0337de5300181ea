"""Stored specs -> Serve applications: the config the control plane hands to Serve."""

from __future__ import annotations

from typing import Any, NamedTuple

from maas_ray.routes import ADMIN_PREFIX, model_prefix
from maas_ray.settings import Settings
from maas_ray.spec import (
    ADMIN_APP,
    GATEWAY_APP,
    MODEL_DEPLOYMENT,
    SHARED_APP,
    SHARED_DEPLOYMENT,
    DeploymentSpec,
    challenger_app,
)

MODEL_APP_IMPORT = "maas_ray.serving.app:build_app"
GATEWAY_APP_IMPORT = "maas_ray.gateway.app:build_gateway"
ADMIN_APP_IMPORT = "maas_ray.gateway.management:build_admin"
SHARED_APP_IMPORT = "maas_ray.serving.shared:build_pool"
# Serve's gRPC ingress: the OIP v2 service, whose RPCs the gateway answers.
GRPC_SERVICER = (
    "maas_ray.serving.proto.predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server"
)
# Serve's max_surge_percent, of the target count rounded up: 1% is one surge replica
# for up to 100 replicas. A replaced deployment (new version, new resources) starts
# each replacement beside the old replica and stops that one only once the new one
# runs, so the old version answers throughout, and keeps answering if the new one
# fails. Serve's default (0) stops the old replica first. The surge replica needs
# room: control/capacity.py counts it before the change is made.
SURGE_PERCENT = 1


class Overload(NamedTuple):
    """What a replica does with more requests than it runs at once (Serve's backpressure):
    holds ``max_queued`` of them waiting, and answers the rest 503 with ``Retry-After``
    at once. ``maas up``'s settings MAAS_MAX_QUEUED_REQUESTS and MAAS_RETRY_AFTER_S."""

    max_queued: int
    retry_after_s: float


DEFAULT_OVERLOAD = Overload(
    Settings.model_fields["max_queued_requests"].default,
    Settings.model_fields["retry_after_s"].default,
)


def applications(
    spec: DeploymentSpec,
    version: str,
    tracking_uri: str,
    *,
    surge: bool = True,
    challenger: bool = True,
    overload: Overload = DEFAULT_OVERLOAD,
) -> list[dict[str, Any]]:
    """The primary's application and, with a canary or shadow, the challenger's.

    ``challenger=False`` leaves the challenger out (a restore with no room for it).
    """
    apps = [
        application(
            spec, version, tracking_uri, surge=surge, challenger=challenger, overload=overload
        )
    ]
    side = spec.challenger
    if side is not None and challenger:
        app = application(
            spec, side.version, tracking_uri, surge=surge, challenger=False, overload=overload
        )
        app["name"] = challenger_app(spec.model)
        app["route_prefix"] = None  # reached through the primary only
        if spec.shadow is not None:
            app["args"]["background"] = True
        app["args"]["arm"] = spec.side  # its answers are logged as the canary's or shadow's
        apps.append(app)
    return apps


def application(
    spec: DeploymentSpec,
    version: str,
    tracking_uri: str,
    *,
    surge: bool = True,
    challenger: bool = True,
    overload: Overload = DEFAULT_OVERLOAD,
) -> dict[str, Any]:
    """The Serve application config (ServeApplicationSchema) of the primary.

    ``version`` is the primary version (the alias resolved). The canary split or
    shadow share goes to the primary's replicas as ``user_config``, so changing or
    ending it reconfigures them in place; the challenger itself is an application
    of its own (``applications``). ``challenger=False`` leaves the split out.
    ``surge``: replacements start beside the old replicas, one at a time (see
    SURGE_PERCENT).
    """
    traffic: dict[str, Any] = {"canary": None, "shadow": None}
    if challenger and spec.canary is not None:
        traffic["canary"] = spec.canary.model_dump(exclude_none=True)
    if challenger and spec.shadow is not None:
        traffic["shadow"] = spec.shadow.model_dump()
    deployment: dict[str, Any] = {
        "name": MODEL_DEPLOYMENT,
        "max_ongoing_requests": spec.max_ongoing_requests,
        # Serve answers what is past the queue itself, before the model's code runs.
        "max_queued_requests": spec.max_queued_requests or overload.max_queued,
        "backpressure_config": {"status_code": 503, "retry_after_s": overload.retry_after_s},
        "ray_actor_options": {"num_cpus": spec.num_cpus, "num_gpus": spec.num_gpus},
        "max_surge_percent": SURGE_PERCENT if surge else 0,
        "user_config": traffic,
    }
    if spec.autoscaling:
        deployment["autoscaling_config"] = {
            "min_replicas": spec.min_replicas,
            "initial_replicas": max(spec.min_replicas or 0, 1),
            "max_replicas": spec.max_replicas,
            "target_ongoing_requests": spec.target_ongoing_requests,
            "upscale_delay_s": spec.upscale_delay_s,
            "downscale_delay_s": spec.downscale_delay_s,
            # Replicas report load every 2 s over the last 10 s (Serve: 10 s and
            # 30 s), so a load step is seen within seconds, not half a minute.
            "metrics_interval_s": 2.0,
            "look_back_period_s": 10.0,
        }
    else:
        deployment["num_replicas"] = spec.num_replicas or 1
    args: dict[str, Any] = {"model": spec.model, "version": version}
    args["tracking_uri"] = tracking_uri
    if spec.autoscaling or spec.predict_timeout_s is not None:
        # See ModelServer: keeps queueing visible to Serve; a predict on the event loop
        # cannot be cut at its limit, so a spec's own limit runs every predict off it.
        args["inline"] = False
    if spec.batching is not None:
        args["batching"] = spec.batching.model_dump()
    if spec.mask_fields:
        args["mask_fields"] = spec.mask_fields
    if spec.log_percent is not None:
        args["log_percent"] = spec.log_percent
    if spec.predict_timeout_s is not None:
        args["predict_timeout_s"] = spec.predict_timeout_s
    return {
        "name": spec.model,
        "route_prefix": model_prefix(spec.model),
        "import_path": MODEL_APP_IMPORT,
        "args": args,
        "deployments": [deployment],
    }


def gateway_application(tracking_uri: str) -> dict[str, Any]:
    """The catch-all application at ``/`` (health routes, JSON 404s)."""
    return {
        "name": GATEWAY_APP,
        "route_prefix": "/",
        "import_path": GATEWAY_APP_IMPORT,
        "args": {"tracking_uri": tracking_uri},
    }


def admin_application(tracking_uri: str) -> dict[str, Any]:
    """The management API at ``/v1/admin``, an application of its own (``maas-admin``).

    Its config never changes, so a Serve config the API itself submits (a deploy)
    never restarts the replica that submits it.
    """
    return {
        "name": ADMIN_APP,
        "route_prefix": ADMIN_PREFIX,
        "import_path": ADMIN_APP_IMPORT,
        "args": {"tracking_uri": tracking_uri},
    }


def shared_application(
    tracking_uri: str, replicas: int, num_cpus: float, max_ongoing_requests: int = 64
) -> dict[str, Any]:
    """The multiplexed pool that serves every ``mode: shared`` model (no HTTP route:
    the gateway forwards ``/v1/models/{name}/...`` of shared models to it)."""
    return {
        "name": SHARED_APP,
        "route_prefix": None,
        "import_path": SHARED_APP_IMPORT,
        "args": {"tracking_uri": tracking_uri},
        "deployments": [
            {
                "name": SHARED_DEPLOYMENT,
                "num_replicas": replicas,
                "max_ongoing_requests": max_ongoing_requests,
                "ray_actor_options": {"num_cpus": num_cpus},
                "max_surge_percent": SURGE_PERCENT,
            }
        ],
    }


def serve_config(
    applications: list[dict[str, Any]],
    host: str,
    port: int,
    tracking_uri: str,
    *,
    access_log: bool = False,
    grpc_port: int = 0,
) -> dict[str, Any]:
    """A whole ServeDeploySchema document: the gateway, the management API, the given
    applications; with ``grpc_port``, Serve's gRPC ingress there (the Open Inference
    Protocol's service, answered by the gateway)."""
    grpc = {}
    if grpc_port:
        grpc = {"grpc_options": {"port": grpc_port, "grpc_servicer_functions": [GRPC_SERVICER]}}
    return {
        "proxy_location": "HeadOnly",
        "http_options": {"host": host, "port": port},
        **grpc,
        # Access logs cost ~25% of throughput on the hot path: off unless MAAS_ACCESS_LOG.
        "logging_config": {"enable_access_log": access_log},
        "applications": [
            gateway_application(tracking_uri),
            admin_application(tracking_uri),
            *applications,
        ],
    }
