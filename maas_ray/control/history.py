"""Aliases and what serves now: where an alias goes back to, which deployments follow it.

The version a model serves is read from Serve (or, for a shared model, from its
stored spec), so the history records the version that really answered before a
change, not only what the registry said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from maas_ray.control.rows import app_version
from maas_ray.spec import DeploymentSpec
from maas_ray.wire import PRODUCTION

if TYPE_CHECKING:
    from maas_ray.control.serve_api import ServeAPI
    from maas_ray.registry import HistoryEvent, Registry


def rollback_target(events: list[HistoryEvent], alias: str) -> str | None:
    """The version ``alias`` goes back to: replay promotes (push) and rollbacks (pop)."""
    stack: list[str] = []
    for e in events:
        if e.alias != alias:
            continue
        if e.action == "promote" and e.from_version and e.from_version != e.to_version:
            stack.append(e.from_version)
        elif e.action == "rollback" and stack:
            stack.pop()
    return stack[-1] if stack else None


def following(raw: dict[str, Any] | None, alias: str) -> DeploymentSpec | None:
    """The spec if its deployment follows ``alias`` (pinned specs follow production).

    Args:
        raw: The model's stored spec, or None when it is not deployed.
        alias: The alias being moved.
    """
    if raw is None:
        return None
    spec = DeploymentSpec.model_validate(raw)
    if spec.alias == alias or (spec.alias is None and alias == PRODUCTION):
        return spec
    return None


def restore_alias(registry: Registry, name: str, alias: str, version: str | None) -> None:
    """Point ``alias`` back at ``version``, or remove it when it pointed nowhere before."""
    if version is None:
        registry.client.delete_registered_model_alias(name, alias)
    else:
        registry.set_alias(name, alias, version)


def serving_version(serve: ServeAPI, registry: Registry, name: str) -> str | None:
    """The version of ``name`` that serves now (None when nothing does)."""
    apps = serve.applications()
    if name not in apps and is_shared(registry, name):
        raw = registry.get_spec(name) or {}
        spec = DeploymentSpec.model_validate(raw)
        return registry.resolve(name, spec.version, spec.alias).version
    return app_version(apps.get(name) or {})


def is_shared(registry: Registry, name: str) -> bool:
    """True when ``name``'s stored spec has it served by the shared pool."""
    raw = registry.get_spec(name)
    return raw is not None and raw.get("mode") == "shared"
