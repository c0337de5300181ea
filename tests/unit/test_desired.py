"""ControlPlane.desired: one registry listing gives every stored spec and alias; only
a spec that follows the latest version asks the registry again."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from maas_ray.control.deployer import ControlPlane
from maas_ray.settings import Settings


class _Listing:
    """A registry that counts what desired() asks of it."""

    def __init__(self, specs: dict[str, dict[str, Any]], aliases: dict[str, dict[str, str]]):
        self.specs, self.aliases = specs, aliases
        self.listed = 0
        self.resolved: list[tuple[str, str | None, str | None]] = []

    def list_specs_and_aliases(self) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
        self.listed += 1
        return dict(self.specs), dict(self.aliases)

    def resolve(self, name: str, version: str | None = None, alias: str | None = None) -> Any:
        self.resolved.append((name, version, alias))
        return SimpleNamespace(version="7")


def _control(tmp_path: Path, registry: _Listing) -> ControlPlane:
    return ControlPlane(Settings(home=tmp_path), registry=registry)  # type: ignore[arg-type]


def test_versions_and_aliases_come_from_the_one_listing(tmp_path: Path) -> None:
    registry = _Listing(
        {
            "pinned": {"model": "pinned", "version": "3"},
            "aliased": {"model": "aliased", "alias": "production"},
            "latest": {"model": "latest"},
        },
        {"pinned": {}, "aliased": {"production": "5", "staging": "6"}, "latest": {}},
    )
    _, targets = _control(tmp_path, registry).desired()
    assert targets == {"pinned": "3", "aliased": "5", "latest": "7"}
    assert registry.listed == 1
    assert registry.resolved == [("latest", None, None)]  # the one spec naming neither


def test_an_alias_that_points_nowhere_leaves_the_model_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = _Listing({"gone": {"model": "gone", "alias": "production"}}, {"gone": {}})
    with caplog.at_level(logging.WARNING, logger="maas_ray.control.deployer"):
        config, targets = _control(tmp_path, registry).desired()
    assert "gone" not in targets
    assert "gone" not in [a["name"] for a in config["applications"]]
    assert "skipping deployment of gone" in caplog.text
    assert registry.resolved == []


def test_an_override_of_a_model_not_listed_yet_is_resolved(tmp_path: Path) -> None:
    registry = _Listing({}, {})
    _, targets = _control(tmp_path, registry).desired(
        {"fresh": {"model": "fresh", "alias": "production"}}
    )
    assert targets == {"fresh": "7"}
    assert registry.resolved == [("fresh", None, "production")]
