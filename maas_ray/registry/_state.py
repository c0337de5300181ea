"""The per-model state maas_ray keeps on a registered model: deployment spec, aliases, history.

All of it lives in the registered model's tags and aliases (see
:mod:`maas_ray.registry._convert` for the tag keys), so it is as durable as the
registry itself. :class:`Registry` inherits these methods from the mixin here.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from maas_ray.registry._convert import TAG_HISTORY, TAG_RETRAIN, TAG_SPEC, TAG_STARTING
from maas_ray.registry._names import _validate_alias
from maas_ray.registry.models import HistoryEvent

if TYPE_CHECKING:
    from mlflow.entities.model_registry import RegisteredModel
    from mlflow.tracking import MlflowClient

    from maas_ray.registry.models import VersionInfo


class _ModelState:
    """Deployment specs, aliases, history and the pool map, over the registry's client.

    A mixin of :class:`~maas_ray.registry._registry.Registry`, which provides
    ``client``, ``_registered`` and ``get_version``.
    """

    client: MlflowClient

    if TYPE_CHECKING:
        # Provided by Registry; declared here only for the type checker.
        def _registered(self, name: str) -> RegisteredModel: ...

        def get_version(self, name: str, version: str) -> VersionInfo: ...

    # -- deployment specs ---------------------------------------------------------
    def get_spec(self, name: str) -> dict[str, Any] | None:
        """The stored deployment spec of ``name``, or None when it is not deployed."""
        raw = self._registered(name).tags.get(TAG_SPEC)
        return json.loads(raw) if raw else None

    def set_spec(self, name: str, spec: dict[str, Any]) -> None:
        """Store ``spec`` as the model's deployment spec."""
        self.client.set_registered_model_tag(name, TAG_SPEC, json.dumps(spec, sort_keys=True))

    def delete_spec(self, name: str) -> None:
        """Forget the model's deployment spec (the model stays registered)."""
        if TAG_SPEC in self._registered(name).tags:
            self.client.delete_registered_model_tag(name, TAG_SPEC)

    def list_specs(self) -> dict[str, dict[str, Any]]:
        """Every stored deployment spec by model name."""
        return self.list_specs_and_aliases()[0]

    def list_specs_and_aliases(
        self,
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
        """Every stored deployment spec, and every model's aliases (alias -> version),
        by model name: one call to the registry for both."""
        specs, aliases = {}, {}
        for rm in self.client.search_registered_models(max_results=1000):
            if TAG_SPEC in rm.tags:
                specs[rm.name] = json.loads(rm.tags[TAG_SPEC])
            aliases[rm.name] = {str(a): str(v) for a, v in (rm.aliases or {}).items()}
        return specs, aliases

    def get_retrain(self, name: str) -> dict[str, Any] | None:
        """The model's last retrain (``monitoring/retrain.py``'s state), or None."""
        raw = self._registered(name).tags.get(TAG_RETRAIN)
        return json.loads(raw) if raw else None

    def set_retrain(self, name: str, state: dict[str, Any]) -> None:
        """Store the model's retrain state (one per model: the last one)."""
        self.client.set_registered_model_tag(name, TAG_RETRAIN, json.dumps(state, sort_keys=True))

    # -- aliases and history ------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str) -> str | None:
        """Point ``alias`` at ``version``; return the version it pointed to before."""
        _validate_alias(alias)
        self.get_version(name, version)  # ModelNotFound for a version that does not exist
        before = self._registered(name).aliases or {}
        self.client.set_registered_model_alias(name, alias, str(version))
        previous = before.get(alias)
        return None if previous is None else str(previous)

    def get_alias(self, name: str, alias: str) -> str | None:
        """The version ``alias`` points to, or None."""
        version = (self._registered(name).aliases or {}).get(alias)
        return None if version is None else str(version)

    def record(
        self,
        name: str,
        actor: str,
        action: str,
        *,
        alias: str | None = None,
        from_version: str | None = None,
        to_version: str | None = None,
        detail: str = "",
    ) -> HistoryEvent:
        """Append one event to the model's durable history."""
        seq = max((e.seq for e in self.history(name)), default=0) + 1
        event = HistoryEvent(
            seq=seq,
            time_ms=int(time.time() * 1000),
            actor=actor,
            action=action,
            alias=alias,
            from_version=from_version,
            to_version=to_version,
            detail=detail,
        )
        self.client.set_registered_model_tag(
            name, f"{TAG_HISTORY}{seq:06d}", event.model_dump_json(exclude={"seq"})
        )
        return event

    def history(self, name: str) -> list[HistoryEvent]:
        """Every recorded event of ``name``, oldest first."""
        events = []
        for key, value in (self._registered(name).tags or {}).items():
            if key.startswith(TAG_HISTORY):
                seq = int(key[len(TAG_HISTORY) :])
                events.append(HistoryEvent.model_validate({**json.loads(value), "seq": seq}))
        return sorted(events, key=lambda e: e.seq)

    def last_events(self) -> dict[str, HistoryEvent]:
        """The newest history event of every model, in one registry call."""
        out = {}
        for rm in self.client.search_registered_models(max_results=1000):
            keys = [k for k in (rm.tags or {}) if k.startswith(TAG_HISTORY)]
            if keys:
                key = max(keys)  # zero-padded sequence numbers sort as numbers
                seq = int(key[len(TAG_HISTORY) :])
                raw = json.loads(rm.tags[key])
                out[rm.name] = HistoryEvent.model_validate({**raw, "seq": seq})
        return out

    def mark_starting(self, name: str) -> None:
        """Note that ``name``'s first deploy runs (no spec was stored for it before)."""
        self.client.set_registered_model_tag(name, TAG_STARTING, "1")

    def clear_starting(self, name: str) -> None:
        """The first deploy of ``name`` ended (it serves, or it failed)."""
        if TAG_STARTING in self._registered(name).tags:
            self.client.delete_registered_model_tag(name, TAG_STARTING)

    def pool_map(self) -> tuple[dict[str, str], frozenset[str]]:
        """``{model: version}`` of every spec the shared pool may answer for, and which
        of those models are in their first deploy (``mark_starting``).

        Shared specs always; dedicated ones too, for the gateway to answer from the
        warm pool while their own replicas start (not those with ``mask_fields``,
        which only their own replicas apply). One registry call; versions come from
        the spec (pinned) or from the alias it follows.
        """
        out, starting = {}, set()
        for rm in self.client.search_registered_models(max_results=1000):
            raw = rm.tags.get(TAG_SPEC)
            if not raw:
                continue
            spec = json.loads(raw)
            if spec.get("mode") != "shared" and spec.get("mask_fields"):
                continue
            version = spec.get("version") or (rm.aliases or {}).get(spec.get("alias") or "")
            if version is not None:
                out[rm.name] = str(version)
                if TAG_STARTING in rm.tags:
                    starting.add(rm.name)
        return out, frozenset(starting)
