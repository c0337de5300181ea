"""The audit log: every management action, who asked, when, and how it ended.

A table of the security database (``maas_ray.security.db``: SQLite under MAAS_HOME by
default, PostgreSQL in production), committed before the answer goes out, so it
survives restarts and every node writes to the same log. Details pass through the
personal-data mask first.
"""

from __future__ import annotations

import time

from pydantic import BaseModel

from maas_ray.security.keys import _sql
from maas_ray.security.masking import mask_text


class AuditRecord(BaseModel):
    """One management action."""

    id: int
    time: float  # epoch seconds
    actor: str  # key:<name>, jwt:<sub>, ...
    action: str  # register, deploy, undeploy, promote, rollback, canary, shadow, apply, key.*
    target: str  # model name, key id, file
    outcome: str  # ok | error
    status: int  # the HTTP status answered
    detail: str


class AuditLog:
    """Append and read audit records."""

    def __init__(self, url: str) -> None:
        self.url = url

    def record(self, actor: str, action: str, target: str, status: int, detail: str = "") -> None:
        """Append one record (committed when this returns)."""
        _, db = _sql()
        with db.transaction(self.url) as conn:
            conn.execute(
                db.audit.insert().values(
                    time=time.time(),
                    actor=actor,
                    action=action,
                    target=target,
                    outcome="ok" if status < 400 else "error",
                    status=status,
                    detail=mask_text(detail)[:2000],
                )
            )

    def query(
        self, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest ``limit`` records, oldest first, filtered by target and action."""
        sa, db = _sql()
        table = db.audit
        select = sa.select(table).order_by(table.c.id.desc()).limit(limit)
        if target:
            select = select.where(table.c.target == target)
        if action:
            select = select.where(table.c.action == action)
        with db.transaction(self.url) as conn:
            rows = conn.execute(select).mappings().all()
        return [AuditRecord.model_validate(dict(row)) for row in reversed(rows)]
