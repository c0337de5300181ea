from __future__ import annotations

import pytest
from pydantic import ValidationError
from ray.serve.schema import ServeDeploySchema

from maas_ray.control.applications import Overload, application, serve_config
from maas_ray.spec import DeploymentSpec


def test_fixed_replicas_become_a_serve_application() -> None:
    app = application(
        DeploymentSpec(model="m", num_replicas=2, num_cpus=1, num_gpus=0.5),
        "7",
        "http://127.0.0.1:5000",
    )
    assert app["route_prefix"] == "/v1/models/m"
    assert app["args"] == {"model": "m", "version": "7", "tracking_uri": "http://127.0.0.1:5000"}
    (dep,) = app["deployments"]
    assert dep["num_replicas"] == 2
    assert dep["ray_actor_options"] == {"num_cpus": 1, "num_gpus": 0.5}


def test_autoscaling_spec() -> None:
    spec = DeploymentSpec(model="m", min_replicas=1, max_replicas=3)
    (dep,) = application(spec, "1", "u")["deployments"]
    assert "num_replicas" not in dep
    assert dep["autoscaling_config"]["min_replicas"] == 1
    assert dep["autoscaling_config"]["max_replicas"] == 3
    assert spec.replicas_text() == "1-3"


def test_autoscaling_delays_and_the_thread_hop() -> None:
    spec = DeploymentSpec(
        model="m", min_replicas=1, max_replicas=2, upscale_delay_s=3, downscale_delay_s=10
    )
    app = application(spec, "1", "u")
    (dep,) = app["deployments"]
    assert dep["autoscaling_config"]["upscale_delay_s"] == 3
    assert dep["autoscaling_config"]["downscale_delay_s"] == 10
    # Serve must see queued requests as in flight to scale on them.
    assert app["args"]["inline"] is False
    assert "inline" not in application(DeploymentSpec(model="m"), "1", "u")["args"]


def test_a_predict_limit_of_the_spec_reaches_the_replica_and_takes_it_off_the_loop() -> None:
    from maas_ray.serving.app import ModelAppArgs

    args = application(DeploymentSpec(model="m", predict_timeout_s=2.5), "1", "u")["args"]
    assert (args["predict_timeout_s"], args["inline"]) == (2.5, False)
    assert ModelAppArgs.model_validate(args).predict_timeout_s == 2.5  # what build_app takes
    with pytest.raises(ValidationError, match="predict_timeout_s"):
        DeploymentSpec(model="m", predict_timeout_s=0)


def test_the_queue_bound_and_retry_after_reach_serve() -> None:
    from ray.serve.schema import DeploymentSchema

    (dep,) = application(DeploymentSpec(model="m"), "1", "u")["deployments"]
    assert dep["max_queued_requests"] == 128  # MAAS_MAX_QUEUED_REQUESTS's default
    assert dep["backpressure_config"] == {"status_code": 503, "retry_after_s": 1.0}
    spec = DeploymentSpec(model="m", max_queued_requests=4)
    (dep,) = application(spec, "1", "u", overload=Overload(50, 3.0))["deployments"]
    assert (dep["max_queued_requests"], dep["backpressure_config"]["retry_after_s"]) == (4, 3.0)
    DeploymentSchema.model_validate(dep)  # what Serve takes
    with pytest.raises(ValidationError, match="max_queued_requests"):
        DeploymentSpec(model="m", max_queued_requests=0)


def test_a_batch_of_one_is_accepted() -> None:
    spec = DeploymentSpec(model="m", batching={"max_batch_size": 1})
    assert application(spec, "1", "u")["args"]["batching"]["max_batch_size"] == 1
    with pytest.raises(ValidationError, match="max_batch_size"):
        DeploymentSpec(model="m", batching={"max_batch_size": 0})


def test_whole_config_passes_rays_own_schema() -> None:
    apps = [
        application(DeploymentSpec(model="a"), "1", "u"),
        application(DeploymentSpec(model="b", min_replicas=0, max_replicas=2), "4", "u"),
    ]
    parsed = ServeDeploySchema.model_validate(serve_config(apps, "127.0.0.1", 8000, "u"))
    assert [a.name for a in parsed.applications] == ["maas-gateway", "maas-admin", "a", "b"]
    assert parsed.http_options.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": "1", "alias": "prod"}, "either a version or an alias"),
        ({"num_replicas": 1, "min_replicas": 1, "max_replicas": 2}, "either num_replicas"),
        ({"min_replicas": 1}, "both min_replicas and max_replicas"),
        ({"min_replicas": 3, "max_replicas": 1}, "min_replicas=3 > max_replicas=1"),
        ({"num_gpus": -1}, "num_gpus"),
        ({"replicas": 2}, "replicas"),
    ],
)
def test_inconsistent_specs_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DeploymentSpec(model="m", **kwargs)  # type: ignore[arg-type]
