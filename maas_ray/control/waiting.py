"""Waiting for Serve: PUT a config, then poll until it runs what the config says.

Serve's REST API answers a PUT at once and builds the applications in the
background, so every action polls the applications until each target version
runs (or fails, or the time is up), and until what the config dropped is gone.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from maas_ray.control import rows
from maas_ray.control.history import is_shared
from maas_ray.control.rows import FAILED, app_error, app_version
from maas_ray.errors import DeploymentFailed, MaasError
from maas_ray.spec import SHARED_APP, challenger_app, is_challenger

if TYPE_CHECKING:
    from maas_ray.control.deployer import ControlPlane, Overrides, Progress
    from maas_ray.control.serve_api import ServeAPI

logger = logging.getLogger(__name__)

# After a refused change, how long to wait for the version before it to answer again.
RESTORE_WAIT_S = 120.0
# Between two reads of Serve's applications (one dashboard call each).
POLL_S = 0.25


def wait_running(
    control: ControlPlane,
    targets: dict[str, str],
    progress: Progress | None = None,
    failures: dict[str, str] | None = None,
    timeout_s: float | None = None,
    apps: dict[str, dict[str, Any]] | None = None,
    retiring: dict[str, set[str]] | None = None,
) -> None:
    """Poll Serve until every application in ``targets`` runs its target version
    (and, for those in ``apps``, that config: args and user_config, so a changed
    canary split or batching is seen applied, not only the version), and none of
    its ``retiring`` replicas (those of the version before) is left.

    Serve shows the new config and the old status for a moment after a PUT, so a
    switch of version is done only once the replicas that ran before are gone:
    from then on every answer comes from the new version.

    With ``failures``, an application that fails or times out is recorded there
    (name -> reason) instead of raising, and the others are still waited for.

    Args:
        control: The control plane whose Serve and registry are read.
        targets: ``{application: version}`` to wait for.
        progress: Called with a line per application still starting.
        failures: Where to record failures instead of raising.
        timeout_s: How long to wait (default: the deploy timeout).
        apps: ``{application: config}`` whose args and user_config must be applied.
        retiring: ``{application: replica ids}`` that must be gone.

    Raises:
        DeploymentFailed: An application failed or timed out (without ``failures``).
    """
    timeout_s = control.settings.deploy_timeout_s if timeout_s is None else timeout_s
    deadline = time.monotonic() + timeout_s
    pending = dict(targets)
    while pending:
        live = control.serve.applications()
        for name, version in list(pending.items()):
            app = live.get(name) or {}
            state, running_version = app.get("status"), app_version(app)
            shared = not is_challenger(name) and name not in live and SHARED_APP in live
            if shared and is_shared(control.registry, name):
                app = live[SHARED_APP]
                state, running_version = app.get("status"), version
            want = (apps or {}).get(name)
            applied = want is None or name not in live or rows.applied(app, want)
            left = (retiring or {}).get(name, set()) & replica_ids(app, "RUNNING")
            if state == "RUNNING" and running_version == version and applied and not left:
                del pending[name]
            elif state in FAILED and running_version == version:
                why = f"version {version} failed: {app_error(app)}"
                if failures is None:
                    raise DeploymentFailed(f"{rows.label(name)} {why}")
                failures[name] = why
                del pending[name]
            elif progress:
                progress(f"{name} v{version}: {state or 'NOT_STARTED'}")
        if pending and time.monotonic() > deadline:
            waiting = ", ".join(f"{n} v{v}" for n, v in pending.items())
            if failures is not None:
                for name, version in pending.items():
                    failures[name] = f"version {version} not running after {timeout_s:.0f}s"
                return
            raise DeploymentFailed(f"timed out after {timeout_s:.0f}s waiting for {waiting}")
        if pending:
            time.sleep(POLL_S)


def replica_ids(app: dict[str, Any], state: str | None = None) -> set[str]:
    """The ids of the replicas Serve lists for an application (in ``state`` only, if
    given: a STOPPING replica takes no new request while it drains)."""
    return {
        str(r["replica_id"])
        for dep in (app.get("deployments") or {}).values()
        for r in dep.get("replicas") or []
        if r.get("replica_id") and state in (None, r.get("state"))
    }


def wait_gone(
    serve: ServeAPI, names: list[str], timeout_s: float, progress: Progress | None = None
) -> list[str]:
    """Wait until Serve runs none of ``names``; return those still there at the end."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [n for n in names if n in serve.applications()]
        if not left or time.monotonic() > deadline:
            return left
        if progress:
            progress("stopping " + ", ".join(left))
        time.sleep(POLL_S)


def converge(
    control: ControlPlane,
    names: list[str],
    progress: Progress | None,
    overrides: Overrides | None = None,
    no_surge: frozenset[str] = frozenset(),
    failures: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> dict[str, str]:
    """PUT the desired config and wait until ``names`` (and their challengers) run
    it, version and config, and a challenger the config drops is gone.

    Returns:
        ``{application: version}`` of the whole desired config.
    """
    config, targets = control.desired(overrides, no_surge)
    wanted = {a: targets[a] for n in names for a in (n, challenger_app(n)) if a in targets}
    before = control.serve.applications()
    # The replicas of a running application whose version changes: the switch ends with
    # them. Only a RUNNING one is known to run its config's version: after a refused
    # change (DEPLOY_FAILED, DEPLOYING) the replicas left are the version put back.
    retiring = {
        a: replica_ids(before[a])
        for a, v in wanted.items()
        if a in before
        and before[a].get("status") == "RUNNING"
        and app_version(before[a]) not in (None, v)
    }
    control.serve.put_config(config)
    apps = {a["name"]: a for a in config["applications"]}
    wait_running(control, wanted, progress, failures, timeout_s, apps, retiring)
    gone = [a for n in names for a in (n, challenger_app(n)) if a not in targets]
    timeout_s = control.settings.deploy_timeout_s if timeout_s is None else timeout_s
    for name in wait_gone(control.serve, gone, timeout_s, progress):
        logger.warning("%s still stopping after %.0fs", name, timeout_s)
    return targets


def settle(control: ControlPlane, names: list[str], progress: Progress | None) -> None:
    """After a refused change: apply the stored state again and wait until what
    served before answers again (or is gone), so the caller returns to a platform
    that runs what the registry says."""
    try:
        failures: dict[str, str] = {}
        converge(control, names, progress, failures=failures, timeout_s=RESTORE_WAIT_S)
        for name, why in failures.items():
            logger.error("%s did not come back after a refused change: %s", rows.label(name), why)
    except MaasError as exc:
        logger.error("could not put back the state before a refused change: %s", exc)
