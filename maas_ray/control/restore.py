"""Restore (``maas up``): every stored deployment that fits, primaries first.

Serve builds every application of a config at once and places replicas in no
particular order, so a canary could take the room its own primary needs. The
order is decided here instead, with capacity.restore_order, and only what fits
is handed to Serve.
"""

from __future__ import annotations

import logging
import time

from maas_ray.control import capacity, waiting
from maas_ray.control.deployer import ControlPlane, Progress
from maas_ray.control.rows import label
from maas_ray.control.waiting import RESTORE_WAIT_S
from maas_ray.spec import is_challenger, model_of

logger = logging.getLogger(__name__)


def restore(control: ControlPlane, progress: Progress | None = None) -> list[str]:
    """Start every stored deployment that fits (``maas up``); return what did not.

    Primaries are placed before canaries and shadows, so a challenger never
    keeps its primary out. A model that does not fit is left out (its spec stays
    stored; the next action or ``maas up`` with room brings it back) and named
    with the reason, like one that fails to start; the rest serves.
    """
    everything, _ = control.desired()
    left_out, no_challenger, notes = capacity.restore_order(
        everything, control.serve.applications(), control.nodes()
    )
    config, targets = control.desired(
        leave_out=frozenset(left_out), no_challenger=frozenset(no_challenger)
    )
    control.serve.put_config(config)
    failures: dict[str, str] = {}
    waiting.wait_running(control, targets, progress, failures=failures)
    if failures:
        # Once more for what failed: a start can fail for a passing reason (the
        # registry slow to answer; Serve 2.60's controller racing two builds).
        failures = _retry(control, set(failures), left_out, no_challenger, progress)
    notes += [f"{label(name)}: {why}" for name, why in sorted(failures.items())]
    for note in notes:
        logger.warning("restore: %s", note)
    return notes


def _retry(
    control: ControlPlane,
    names: set[str],
    left_out: set[str],
    no_challenger: set[str],
    progress: Progress | None,
) -> dict[str, str]:
    """Take ``names`` (applications) out of Serve, then start them again; return what
    still fails."""
    primaries = {n for n in names if not is_challenger(n)}
    sides = {model_of(n) for n in names if is_challenger(n)}
    control.serve.put_config(
        control.desired(
            leave_out=frozenset(left_out | primaries),
            no_challenger=frozenset(no_challenger | sides | primaries),
        )[0]
    )
    deadline = time.monotonic() + RESTORE_WAIT_S
    while names & set(control.serve.applications()) and time.monotonic() < deadline:
        time.sleep(0.5)
    config, targets = control.desired(
        leave_out=frozenset(left_out), no_challenger=frozenset(no_challenger)
    )
    control.serve.put_config(config)
    failures: dict[str, str] = {}
    waiting.wait_running(
        control, {n: targets[n] for n in names if n in targets}, progress, failures
    )
    return failures
