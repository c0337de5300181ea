"""serving/warm.py: a Ray worker's warm-up imports go on only where a replica may come
(an idle worker, a replica), judged by the process title Ray gives the worker; a worker
Serve starts for itself (its controller, a proxy) skips them. In real processes: importing
the module starts its thread."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from maas_ray.jobs.submit import WARM_SWITCH
from maas_ray.serving.warm import wanted


@pytest.mark.parametrize(
    ("title", "imports"),
    [
        (None, True),  # not a Ray worker
        ("python -m pytest", True),
        ("ray::IDLE", True),
        ("ray::ServeReplica:rs:ModelServer", True),
        ("ray::SERVE_REPLICA::rs#ModelServer#89stb:ServeReplica:rs:ModelServer.__init__", True),
        ("ray::ServeReplica:maas-gateway:Gateway", True),
        ("ray::ServeController", False),
        ("ray::ProxyActor", False),
        ("ray::HAProxyManager", False),
        ("ray::build_serve_application", False),
        ("ray::TrainController", False),
    ],
)
def test_which_workers_warm_up(title: str | None, imports: bool) -> None:
    assert wanted(title) is imports


# A Ray worker's start as far as the title goes: Ray's connect() sets "ray::IDLE" before
# the preloaded modules import, and the actor's class once its creation task runs.
# Two small standard modules stand in for MLflow's and skops's (seconds each): the
# thread reads the list once the worker's fate is known, after the probe replaced it.
PROBE = (
    "import sys, threading, time\n"
    "import ray._raylet as r\n"
    "r.setproctitle('ray::IDLE')\n"
    "import maas_ray.serving.warm as w\n"
    "w.MODULES = ('wave', 'mailbox')\n"
    "assert 'wave' not in sys.modules and 'mailbox' not in sys.modules\n"
    "time.sleep({after})\n"
    "r.setproctitle({title!r})\n"
    "for t in threading.enumerate():\n"
    "    if t.name == 'maas-warm-imports':\n"
    "        t.join(60)\n"
    "print('wave' in sys.modules, 'mailbox' in sys.modules)\n"
)


@pytest.mark.parametrize(
    ("title", "after", "imports"),
    [
        ("ray::ServeController", 0.05, False),  # Serve's own actor: nothing imported
        ("ray::ServeReplica:rs:ModelServer", 0.05, True),  # a replica: everything
        ("ray::IDLE", 0.0, True),  # still idle past FATE_S (the reserve): everything
    ],
)
def test_a_worker_imports_for_what_it_hosts(title: str, after: float, imports: bool) -> None:
    env = {k: v for k, v in os.environ.items() if k != WARM_SWITCH}
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(title=title, after=after)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    assert out == [str(imports), str(imports)]
