"""How maas_ray's records are kept in MLflow's registry, and read back.

The tag keys maas_ray writes (a version's digest and signature; a model's
deployment spec and history), and MLflow's ``ModelVersion`` / ``RegisteredModel``
turned into the plain records of :mod:`maas_ray.registry.models`, with maas_ray's
own tags taken out of the user-visible ones.
"""

from __future__ import annotations

import json

from mlflow.entities.model_registry import ModelVersion, RegisteredModel

from maas_ray.registry.models import ModelInfo, VersionInfo

TAG_SHA256 = "maas.sha256"
TAG_SIGNATURE = "maas.signature"
TAG_SPEC = "maas.deployment"
TAG_HISTORY = "maas.history."  # + zero-padded sequence number
TAG_RETRAIN = "maas.retrain"  # the model's last retrain (monitoring/retrain.py), JSON
# While a first deploy runs (no spec was stored for the model before it): control/rollout.py
TAG_STARTING = "maas.starting"


def _version_info(mv: ModelVersion) -> VersionInfo:
    tags = dict(mv.tags or {})
    raw_sig = tags.pop(TAG_SIGNATURE, None)
    return VersionInfo(
        name=mv.name,
        version=str(mv.version),
        source=mv.source or "",
        run_id=mv.run_id,
        status=str(mv.status),
        description=mv.description or "",
        created_ms=int(mv.creation_timestamp or 0),
        aliases=list(mv.aliases or []),
        tags={k: v for k, v in tags.items() if k != TAG_SHA256},
        signature=json.loads(raw_sig) if raw_sig else None,
        sha256=tags.get(TAG_SHA256),
    )


def _model_info(rm: RegisteredModel, versions: list[VersionInfo]) -> ModelInfo:
    latest = max((int(v.version) for v in rm.latest_versions or []), default=None)
    if versions:
        latest = max(int(v.version) for v in versions)
    # search_model_versions leaves ModelVersion.aliases empty; the model's {alias: version}
    # map is the truth, so each version gets its aliases from there.
    by_version: dict[str, list[str]] = {}
    for alias, version in sorted((rm.aliases or {}).items()):
        by_version.setdefault(str(version), []).append(alias)
    versions = [
        v if v.aliases else v.model_copy(update={"aliases": by_version.get(v.version, [])})
        for v in versions
    ]
    return ModelInfo(
        name=rm.name,
        description=rm.description or "",
        tags={
            k: v
            for k, v in (rm.tags or {}).items()
            if k not in (TAG_SPEC, TAG_RETRAIN, TAG_STARTING) and not k.startswith(TAG_HISTORY)
        },
        aliases={a: str(v) for a, v in (rm.aliases or {}).items()},
        latest_version=None if latest is None else str(latest),
        versions=versions,
    )
