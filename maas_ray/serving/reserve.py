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
``KEEP_ALIVE_S`` at least, then treats it like any idle worker.

Jobs' workers never take one: a job's runtime environment differs (jobs/submit.py).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any

logger = logging.getLogger(__name__)

KEEP_ALIVE_S = 600
RPC_TIMEOUT_S = 10
# Replicas starting together (a restore) each see the others' workers only once those
# have started (~1-2 s): each waits a moment first, and asks for one at most.
JITTER_S = 2.0


def _metadata() -> tuple[tuple[str, str], ...]:
    """Ray's token, as its own gRPC clients send it (nothing when token auth is off)."""
    from ray._private.authentication.grpc_authentication_client_interceptor import (
        _get_authentication_metadata_tuple,
    )

    return _get_authentication_metadata_tuple()


NIL_ACTOR = b"\xff" * 16  # Ray's nil ActorID: the worker hosts no actor


def fresh_worker(worker: Any) -> bool:
    """Whether a worker of a node's stats (CoreWorkerStats) never ran anything."""
    return bool(worker.actor_id in (b"", NIL_ACTOR) and worker.num_executed_tasks == 0)


def _protos() -> tuple[Any, Any, Any]:
    """Ray's generated gRPC modules (no type stubs): common, node_manager, its service."""
    from ray.core.generated import common_pb2, node_manager_pb2, node_manager_pb2_grpc

    return common_pb2, node_manager_pb2, node_manager_pb2_grpc


def fresh(stats: Any) -> int:
    """A node's idle workers (GetNodeStatsReply) that never ran anything."""
    common, _, _ = _protos()
    return sum(
        1 for w in stats.core_workers_stats if w.worker_type == common.WORKER and fresh_worker(w)
    )


def top_up(
    address: str, want: int, metadata: tuple[tuple[str, str], ...] = (), at_most: int = 16
) -> int:
    """Start workers at the raylet ``address`` (host:port) until ``want`` wait idle
    (``at_most`` more); return how many were asked for."""
    import grpc

    common, node_manager, service = _protos()
    with grpc.insecure_channel(address) as channel:
        stub = service.NodeManagerServiceStub(channel)
        stats = stub.GetNodeStats(
            node_manager.GetNodeStatsRequest(include_memory_info=False),
            metadata=metadata,
            timeout=RPC_TIMEOUT_S,
        )
        missing = min(want - fresh(stats), at_most)
        if missing > 0:
            stub.PrestartWorkers(
                node_manager.PrestartWorkersRequest(
                    language=common.PYTHON,
                    num_workers=missing,
                    keep_alive_duration_secs=KEEP_ALIVE_S,
                ),
                metadata=metadata,
                timeout=RPC_TIMEOUT_S,
            )
    return max(missing, 0)


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
