"""The worker reserve's count of a node's idle workers that never ran anything."""

from __future__ import annotations

from ray.core.generated import common_pb2, node_manager_pb2

from maas_ray.control import workers


def _worker(actor: bytes, tasks: int, kind: int = common_pb2.WORKER) -> common_pb2.CoreWorkerStats:
    return common_pb2.CoreWorkerStats(actor_id=actor, num_executed_tasks=tasks, worker_type=kind)


def test_only_workers_that_never_ran_an_actor_or_a_task_are_in_reserve() -> None:
    stats = node_manager_pb2.GetNodeStatsReply(
        core_workers_stats=[
            _worker(workers.NIL_ACTOR, 0),  # prestarted, waiting
            _worker(b"", 0),  # the same, as an older raylet reports it
            _worker(workers.NIL_ACTOR, 1),  # ran a build task: Serve's controller's now
            _worker(b"\x01" * 16, 0),  # hosts a replica
            _worker(workers.NIL_ACTOR, 0, common_pb2.DRIVER),  # a driver, not a worker
        ]
    )
    assert workers.fresh(stats) == 2
