"""The checks and quoting of model names and aliases before they reach MLflow."""

from __future__ import annotations

from maas_ray.errors import BadRequest


def _validate_name(name: str) -> None:
    ok = name and all(c.isalnum() or c in "-_." for c in name) and name[0].isalnum()
    if not ok or len(name) > 100:
        raise BadRequest(
            f"got '{name}' for model name: use letters, digits, '-', '_' or '.', "
            "starting with a letter or digit"
        )


def _validate_alias(alias: str) -> None:
    ok = alias and all(c.isalnum() or c in "-_" for c in alias) and alias[0].isalpha()
    if not ok or len(alias) > 64 or alias.lower().startswith("v") and alias[1:].isdigit():
        raise BadRequest(
            f"got '{alias}' for alias: use letters, digits, '-' or '_', starting with a "
            "letter (and not v<number>, which MLflow reserves)"
        )


def _quote(name: str) -> str:
    return name.replace("'", "\\'")
