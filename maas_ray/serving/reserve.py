"""A reserve of started, idle Ray worker processes on each node, for the next replica.

A replica started in a new worker process waited ~4 s before its model began to
load (a deploy took ~6 s end to end on 2 cores): the process starts, imports Ray,
then Ray Serve's replica and the platform's serving modules, on the critical path
of every deploy, canary, promote, scale-out and replacement. Ray places a new
replica on an idle worker when one fits it (a worker that never ran a task, with
no runtime environment); Serve's controller leaves none (workers that ran its
tasks belong to it), so every replica started cold. Ray's raylet starts such
workers on request (``PrestartWorkers``): a started replica asks its own node for
one more when fewer than ``Settings.worker_reserve`` wait there, so the next
replica on that node starts in ~1 s (the warm imports, serving/warm.py, already
done). A reserved worker costs ~350 MB resident and a little idle CPU; the raylet keeps it
``control.workers.KEEP_ALIVE_S`` at least, then treats it like any idle worker.

Jobs' workers never take one: a job's runtime environment differs (jobs/submit.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time

from maas_ray.control.workers import top_up

logger = logging.getLogger(__name__)

# Replicas starting together (a restore) each see the others' workers only once those
# have started (~1-2 s): each waits a moment first, and asks for one at most.
JITTER_S = 2.0


def _metadata() -> tuple[tuple[str, str], ...]:
    """Ray's token, as its own gRPC clients send it (nothing when token auth is off)."""
    from ray._private.authentication.grpc_authentication_client_interceptor import (
        _get_authentication_metadata_tuple,
    )

    return _get_authentication_metadata_tuple()


def _here() -> str:
    """This worker's raylet, host:port."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    node = next(n for n in ray.nodes() if n["NodeID"] == node_id)
    return f"{node['NodeManagerAddress']}:{node['NodeManagerPort']}"


def _replenish(want: int) -> None:
    time.sleep(random.uniform(0, JITTER_S))
    try:
        asked = top_up(_here(), want, _metadata(), at_most=1)
        if asked:
            logger.info("asked this node for %d idle worker(s) for the next replica", asked)
    except Exception:  # noqa: BLE001 - only the next replica's start is slower
        logger.warning("could not keep a started worker in reserve", exc_info=True)


def replenish(want: int) -> None:
    """From a replica: keep ``want`` idle workers on its node, in the background
    (nothing outside a Ray worker: a replica's class built in a test process)."""
    import ray

    if want > 0 and ray.is_initialized():
        threading.Thread(target=_replenish, args=(want,), name="maas-reserve", daemon=True).start()
