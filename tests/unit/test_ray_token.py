"""Ray's token file, the client environment, and the HAProxy template edits."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from maas_ray import Settings
from maas_ray.security import ray_token
from maas_ray.serving import loopback


def test_token_is_made_once_owner_only(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    assert ray_token.ensure_token(settings)
    first = settings.ray_token_file.read_text()
    assert len(first) == 64
    assert stat.S_IMODE(settings.ray_token_file.stat().st_mode) == 0o600
    settings.ray_token_file.chmod(0o644)
    assert not ray_token.ensure_token(settings)
    assert settings.ray_token_file.read_text() == first
    assert stat.S_IMODE(settings.ray_token_file.stat().st_mode) == 0o600
    assert ray_token.dashboard_headers(settings) == {"authorization": f"Bearer {first}"}


def test_client_env_on_off_and_loopback(tmp_path: Path) -> None:
    on = ray_token.client_env(Settings(home=tmp_path))
    assert on == {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(tmp_path.resolve() / "ray.token"),
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    off = ray_token.client_env(Settings(home=tmp_path, ray_auth="off", host="10.0.0.5"))
    assert off == {"RAY_AUTH_MODE": "disabled"}
    assert ray_token.read_token(Settings(home=tmp_path, ray_auth="off")) is None
    assert ray_token.dashboard_headers(Settings(home=tmp_path)) == {}  # no token yet


def test_a_foreign_token_is_dropped(tmp_path: Path) -> None:
    env = ray_token.with_client_env(
        Settings(home=tmp_path), {"RAY_AUTH_TOKEN": "someone-else", "PATH": "/bin"}
    )
    assert "RAY_AUTH_TOKEN" not in env
    assert env["PATH"] == "/bin"


@pytest.mark.parametrize(
    ("host", "loop"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
    ],
)
def test_on_loopback(host: str, loop: bool) -> None:
    assert ray_token.on_loopback(host) is loop


def test_haproxy_template_edits_apply_to_rays_template() -> None:
    from ray.serve._private import haproxy_templates

    # Edited once already by the import hook loopback.py installed; edits are idempotent.
    patched, missing = loopback.edit(haproxy_templates.HAPROXY_CONFIG_TEMPLATE)
    assert missing == []
    binds = [line.strip() for line in patched.splitlines() if line.strip().startswith("bind ")]
    assert "bind 127.0.0.1:{{ config.stats_port }}" in binds
    assert "bind 127.0.0.1:{{ config.metrics_port }}" in binds
    assert not [b for b in binds if b.startswith(("bind *:", "bind :"))]
    assert "mode 666" not in patched


def test_a_changed_template_is_named() -> None:
    patched, missing = loopback.edit("listen stats\n  bind 0.0.0.0:{{ config.stats_port }}\n")
    assert patched.endswith("bind 0.0.0.0:{{ config.stats_port }}\n")
    assert "bind *:{{ config.stats_port }}" in missing
