from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from maas_ray import errors
from maas_ray.settings import Settings


def test_env_prefix_and_derived_urls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("MAAS_")]:
        monkeypatch.delenv(key)  # the defaults below, whatever the caller's shell has
    monkeypatch.setenv("MAAS_HOME", str(tmp_path / "h"))
    monkeypatch.setenv("MAAS_SERVE_PORT", "8123")
    s = Settings()
    assert s.home == (tmp_path / "h").resolve()
    assert s.serve_url == "http://127.0.0.1:8123"
    assert s.mlflow_uri == "http://127.0.0.1:5000"
    assert Settings(tracking_uri="http://db:1").mlflow_uri == "http://db:1"


def test_each_platform_has_its_own_ray_temp_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Named by the GCS port: two platforms on one machine never share Ray's 'auto'
    (a job would attach to the other cluster); short enough for Ray's socket paths."""
    monkeypatch.setattr(tempfile, "tempdir", None)  # the system's (the unit tier moves it)
    first, second = Settings(home=tmp_path), Settings(home=tmp_path, ray_port=26879)
    assert first.ray_temp_dir.name == "ray-6379"
    assert second.ray_temp_dir.name == "ray-26879"
    socket = second.ray_temp_dir / "session_2026-12-06_01-08-12_123456_12345/sockets/plasma_store"
    assert len(str(socket)) <= 107


def test_bad_values_are_rejected_with_the_field_name() -> None:
    with pytest.raises(ValidationError, match="serve_port"):
        Settings(serve_port=70000)
    with pytest.raises(ValidationError, match="no_such_knob"):
        Settings(no_such_knob=1)  # type: ignore[call-arg]


def test_home_tilde_is_expanded() -> None:
    assert "~" not in str(Settings(home=Path("~/x")).home)


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.InvalidJSON("x"), 400, "invalid_json"),
        (errors.ModelNotFound("m"), 404, "model_not_found"),
        (errors.VersionNotDeployed("m", "3"), 404, "not_deployed"),
        (errors.UnsupportedMediaType("x"), 415, "unsupported_media_type"),
        (errors.InvalidInput("x"), 422, "invalid_input"),
        (errors.PredictionFailed("x"), 422, "prediction_failed"),
        (errors.PlatformUnavailable("x"), 503, "platform_unavailable"),
    ],
)
def test_every_error_carries_status_and_code(
    error: errors.MaasError, status: int, code: str
) -> None:
    assert isinstance(error, errors.MaasError)
    assert error.status_code == status
    assert error.to_dict()["code"] == code
    assert error.to_dict()["error"]


def test_messages_name_the_model_and_version() -> None:
    assert "version 3 of model 'm'" in errors.ModelNotFound("m", "3").message
    assert errors.BadRequest("x", status_code=405).status_code == 405
    assert errors.BadRequest("x").status_code == 400  # the override did not leak


def test_haproxy_ingress_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from maas_ray.control import nodes

    settings = Settings(home=tmp_path, ingress_http_ports="33000-33499", ingress_metrics_port=20365)
    monkeypatch.setattr(nodes, "haproxy_binary", lambda: "/usr/sbin/haproxy")
    env = nodes.ingress_env(settings)
    assert env["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert env["RAY_SERVE_ENABLE_DIRECT_INGRESS"] == "1"
    assert (
        env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"],
        env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"],
    ) == ("33000", "33499")
    assert env["RAY_SERVE_HAPROXY_METRICS_PORT"] == "20365"
    assert env["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"] == "8500"
    assert env["RAY_SERVE_HAPROXY_STATS_PORT"] == "8404"
    assert env["RAY_SERVE_HAPROXY_TIMEOUT_CLIENT_S"] == "60"  # Ray's default: 3600
    # HAProxy's files in the platform's own Ray folder (Ray's default: /tmp/haproxy-serve),
    # its sockets within the 107 characters a Unix socket path may have (a node's
    # folder under it is named by its 56-character id).
    monkeypatch.setattr(tempfile, "tempdir", "/tmp")  # a machine's (the suite moves it)
    files = nodes.haproxy_files(settings)
    assert set(files) <= set(nodes.ingress_env(settings))
    assert len(files) == 5
    assert all(v.startswith(f"{settings.ray_temp_dir}/haproxy") for v in files.values())
    for name in ("RAY_SERVE_HAPROXY_SOCKET_PATH", "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH"):
        assert len(files[name]) + len("/" + "f" * 56) <= 107
    monkeypatch.setattr(tempfile, "tempdir", "/tmp/" + "d" * 40)  # too long: Ray's default
    assert nodes.haproxy_files(settings) == {}
    # No HAProxy binary, or asked for Serve's proxy: Ray's defaults, no flags.
    monkeypatch.setattr(nodes, "haproxy_binary", lambda: None)
    assert nodes.ingress_env(settings) == {}
    monkeypatch.setattr(nodes, "haproxy_binary", lambda: "/usr/sbin/haproxy")
    assert nodes.ingress_env(Settings(home=tmp_path, ingress="proxy")) == {}


def test_the_bundled_haproxy_is_found() -> None:
    from maas_ray.control.nodes import haproxy_binary

    found = haproxy_binary()
    assert found is not None
    assert Path(found).exists()
