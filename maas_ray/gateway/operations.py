"""Long management actions as operations: run one at a time, in the background.

A deploy waits for replicas (seconds to minutes); its HTTP call answers at once
with an operation the caller polls. Changes run one after another on a single
worker thread, in the order they came: each one computes the whole Serve config
from the registry, so two at once could undo each other's half-done step.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from maas_ray.control.status import Operation
from maas_ray.errors import MaasError, NotFound
from maas_ray.security.masking import mask_text

logger = logging.getLogger(__name__)

KEEP = 500  # finished operations kept for reading back (oldest dropped first)
MAX_STEPS = 200
Progress = Callable[[str], None]
Work = Callable[[Progress], tuple[int, Any]]


class Operations:
    """The operations of one management replica (kept in memory)."""

    def __init__(self) -> None:
        self._ops: OrderedDict[str, Operation] = OrderedDict()
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="maas-change")

    def submit(self, action: str, target: str, actor: str, work: Work) -> tuple[Operation, Future]:
        """Queue ``work`` (called with a progress callback); returns its operation."""
        op = Operation(
            id=secrets.token_hex(6),
            action=action,
            target=target,
            actor=actor,
            created_at=time.time(),
        )
        with self._lock:
            self._ops[op.id] = op
            self._trim()
        future = self._worker.submit(self._run, op, work)
        return op, future

    def get(self, op_id: str) -> Operation:
        """A copy of operation ``op_id``; NotFound if this replica has none by that id."""
        with self._lock:
            op = self._ops.get(op_id)
            if op is None:
                raise NotFound(
                    f"no operation '{op_id[:40]}' (operations are kept in the management "
                    f"replica's memory, the last {KEEP})"
                )
            return op.model_copy(deep=True)

    def recent(self, limit: int = 50) -> list[Operation]:
        """The newest operations, newest first."""
        with self._lock:
            ops = list(self._ops.values())[-limit:]
            return [op.model_copy(deep=True) for op in reversed(ops)]

    def _run(self, op: Operation, work: Work) -> tuple[int, Any]:
        with self._lock:
            op.state, op.started_at = "running", time.time()
        try:
            status, answer = work(lambda step: self._step(op, step))
        except MaasError as exc:
            self._finish(op, error=_error(exc))
            raise
        except Exception as exc:
            logger.exception("operation %s (%s %s) failed", op.id, op.action, op.target)
            error = MaasError("internal error: the management replica's log has the details")
            self._finish(op, error=_error(error))
            raise error from exc
        self._finish(op, result=answer)
        return status, answer

    def _step(self, op: Operation, step: str) -> None:
        with self._lock:
            if op.steps and op.steps[-1] == step:
                return  # a wait loop reports the same state many times
            op.steps = [*op.steps[-(MAX_STEPS - 1) :], step]

    def _finish(
        self, op: Operation, *, result: Any = None, error: dict[str, Any] | None = None
    ) -> None:
        with self._lock:
            op.result, op.error = result, error
            op.state = "failed" if error is not None else "succeeded"
            op.finished_at = time.time()

    def _trim(self) -> None:
        while len(self._ops) > KEEP:
            oldest = next(iter(self._ops))
            if not self._ops[oldest].done:
                break  # never drop one still queued or running
            del self._ops[oldest]


def _error(exc: MaasError) -> dict[str, Any]:
    """The JSON error of a failed operation, as an HTTP answer would carry it."""
    data = exc.to_dict()
    data["error"] = mask_text(data["error"])
    return {**data, "status": exc.status_code}
