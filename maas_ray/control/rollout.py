"""Rolling out one change: admit it, pass through its steps, store it, wait; undo on failure.

A change never leaves a bad version taking the traffic: when any step fails,
the spec that served before is stored again and Serve is brought back to it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from maas_ray.control import rows
from maas_ray.control.rows import FAILED_ACTION
from maas_ray.control.waiting import converge, settle
from maas_ray.errors import InsufficientResources, MaasError
from maas_ray.spec import DeploymentSpec, challenger_app

if TYPE_CHECKING:
    from maas_ray.control.deployer import ControlPlane, Overrides, Progress

logger = logging.getLogger(__name__)


def switch(
    control: ControlPlane,
    spec: DeploymentSpec,
    previous: dict[str, Any] | None,
    progress: Progress | None,
    what: str,
    in_place_if_full: bool = False,
) -> None:
    """Admit, store ``spec``, apply, and wait; put ``previous`` back if it fails.

    Serve replaces replicas as a rolling update with one surge replica (a new
    one starts and loads before an old one stops), so callers see no failed
    request during a switch. ``in_place_if_full``: where there is room for the
    change but not for its surge replica (a rollback on a full cluster), replace
    in place instead of refusing: requests wait in the ingress while the new
    replica starts. A challenger that goes away first stops getting traffic; a
    new one gets traffic only once it runs (see steps).

    Args:
        control: The control plane to change.
        spec: The spec to store and run.
        previous: The stored spec before the change (None: the model is new).
        progress: Called with a line per application still starting.
        what: The change, as messages name it (``deploy of m v2``).
        in_place_if_full: Replace without a surge replica when there is no room for one.

    Raises:
        MaasError: The change was refused or failed; what served before serves again.
    """
    overrides: Overrides = {spec.model: spec.model_dump(exclude_none=True)}
    no_surge = admit_switch(control, overrides, what, in_place_if_full)
    stored = False
    first = _mark_first(control, [(spec, previous)])
    try:
        for step in steps(spec, previous):
            step_overrides: Overrides = {spec.model: step}
            step_surge = admit_switch(control, step_overrides, what, in_place_if_full)
            converge(control, [spec.model], progress, step_overrides, step_surge)
        control.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
        stored = True
        converge(control, [spec.model], progress, no_surge=no_surge)
    except MaasError as exc:
        _clear_first(control, first)  # before the put-back: the pool stops answering it
        # Put back what served before so a bad version never takes the traffic.
        if stored:
            _put_back(control, [(spec, previous)])
        settle(control, [spec.model], progress)
        record_failure(control, spec, exc)
        raise
    finally:
        _clear_first(control, first)


def switch_all(
    control: ControlPlane,
    changed: list[tuple[DeploymentSpec, dict[str, Any] | None]],
    progress: Progress | None,
) -> dict[str, str]:
    """``switch`` for several models at once (``maas apply``): all or nothing.

    Args:
        control: The control plane to change.
        changed: Each spec to store and run, with the stored spec before it (None: new).
        progress: Called with a line per application still starting.

    Returns:
        ``{application: version}`` of the whole desired config after the change.

    Raises:
        MaasError: The change was refused or failed; what served before serves again.
    """
    overrides: Overrides = {s.model: s.model_dump(exclude_none=True) for s, _ in changed}
    control.admit(overrides, "apply of " + ", ".join(sorted(overrides)))
    plan = {s.model: st for s, before in changed if (st := steps(s, before))}
    saved = False
    first = _mark_first(control, changed)
    try:
        for i in range(max((len(st) for st in plan.values()), default=0)):
            # A model with fewer steps stays at its last one meanwhile.
            now: Overrides = {m: st[min(i, len(st) - 1)] for m, st in plan.items()}
            converge(control, sorted(now), progress, now)
        for spec, _ in changed:
            control.registry.set_spec(spec.model, spec.model_dump(exclude_none=True))
        saved = True
        return converge(control, [s.model for s, _ in changed], progress)
    except MaasError as exc:
        _clear_first(control, first)
        if saved:
            _put_back(control, changed)
        settle(control, [s.model for s, _ in changed], progress)
        for spec, _ in changed:
            record_failure(control, spec, exc)
        raise
    finally:
        _clear_first(control, first)


def _mark_first(
    control: ControlPlane, changed: list[tuple[DeploymentSpec, dict[str, Any] | None]]
) -> list[str]:
    """Mark the dedicated models deployed for the first time (no stored spec before):
    while their replicas start, the warm pool answers the requests Serve's fallback
    proxy holds for them (gateway/app.py, ``Gateway.pooled``). Returns those marked."""
    first = [s.model for s, before in changed if before is None and s.mode != "shared"]
    for name in first:
        control.registry.mark_starting(name)
    return first


def _clear_first(control: ControlPlane, first: list[str]) -> None:
    """Unmark what ``_mark_first`` marked (once; a registry that does not answer leaves
    the mark: the pool then answers held requests of a model that has no replica)."""
    for name in list(first):
        first.remove(name)
        try:
            control.registry.clear_starting(name)
        except MaasError:
            logger.warning("could not unmark the first deploy of %s", name, exc_info=True)


def _put_back(
    control: ControlPlane, changed: list[tuple[DeploymentSpec, dict[str, Any] | None]]
) -> None:
    """Store again the spec each model had before (delete the spec of a new one)."""
    for spec, before in changed:
        if before is None:
            control.registry.delete_spec(spec.model)
        else:
            control.registry.set_spec(spec.model, before)


def admit_switch(
    control: ControlPlane, overrides: Overrides, what: str, in_place: bool
) -> frozenset[str]:
    """Admit a change; with ``in_place``, fall back to replacing without a surge
    replica. Returns the models to replace in place."""
    try:
        control.admit(overrides, what)
        return frozenset()
    except InsufficientResources:
        if not in_place:
            raise
        no_surge = frozenset(overrides)
        control.admit(overrides, what, no_surge)
        logger.warning("%s: no room for a surge replica, replacing in place", what)
        return no_surge


def record_failure(control: ControlPlane, spec: DeploymentSpec, exc: MaasError) -> None:
    """Record a refused deploy; `maas status` shows it until the next action."""
    version: str | None
    try:
        version = control.registry.resolve(spec.model, spec.version, spec.alias).version
    except MaasError:
        version = spec.version
    control.registry.record(
        spec.model,
        control.settings.who,
        FAILED_ACTION,
        alias=spec.alias,
        to_version=version,
        detail=exc.message[:2000],
    )


def drifted(model: str, wanted: dict[str, Any], running: dict[str, Any]) -> bool:
    """True when Serve does not run ``model``'s applications (its own and its
    challenger's) as the config ``wanted`` says."""
    side = challenger_app(model)
    if side in running and side not in wanted:
        return True
    return any(rows.drifted(wanted.get(a), running.get(a)) for a in (model, side))


def steps(spec: DeploymentSpec, previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The specs to pass through on the way from ``previous`` to ``spec``.

    A challenger that goes away (or is replaced by another version) is first set to
    0%: the primary's replicas stop sending it requests before it stops, or they
    would hang in the handle until its replica is killed (seen: 20 s, then 500s). A
    new challenger starts at 0% and gets its share once it runs, so no request waits
    for it to load. Both are reconfigures of the primary, not new replicas.
    """
    result = []
    before = DeploymentSpec.model_validate(previous) if previous is not None else None
    old = before.challenger if before is not None and before.mode != "shared" else None
    new = spec.challenger if spec.mode != "shared" else None
    if previous is not None and old is not None and old.percent > 0:
        if new is None or new.version != old.version:
            result.append(_at_zero(previous))
    if new is not None and new.percent > 0 and (old is None or old.version != new.version):
        result.append(_at_zero(spec.model_dump(exclude_none=True)))
    return result


def _at_zero(raw: dict[str, Any]) -> dict[str, Any]:
    """A stored spec with its canary's or shadow's share set to 0%."""
    kind = "canary" if raw.get("canary") is not None else "shadow"
    return {**raw, kind: {**raw[kind], "percent": 0}}
