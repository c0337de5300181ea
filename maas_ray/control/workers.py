"""Idle Ray workers kept on a node for its next replica: how many a node's raylet has
(that never ran anything), and asking it for more (``PrestartWorkers``). Used by
``maas up`` for the head (control/platform.py) and by every replica that starts, for
its own node (serving/reserve.py, which says why)."""

from __future__ import annotations

from typing import Any

KEEP_ALIVE_S = 600
RPC_TIMEOUT_S = 10


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
