"""The audit log: every management action, who asked, when, and how it ended.

One SQLite file under ``MAAS_HOME/security`` (stdlib ``sqlite3``; WAL, so readers
never wait for the writer), committed before the answer goes out, so it
survives restarts. Details pass through the personal-data mask first.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from maas_ray.security.masking import mask_text

AUDIT_FILE = "audit.db"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER NOT NULL,
    detail TEXT NOT NULL
)
"""


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

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / AUDIT_FILE
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(_SCHEMA)
        self.path.chmod(0o600)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        try:
            with db:  # commits, or rolls back on an error
                yield db
        finally:
            db.close()

    def record(self, actor: str, action: str, target: str, status: int, detail: str = "") -> None:
        """Append one record (committed when this returns)."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO audit (time, actor, action, target, outcome, status, detail) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    time.time(),
                    actor,
                    action,
                    target,
                    "ok" if status < 400 else "error",
                    status,
                    mask_text(detail)[:2000],
                ),
            )

    def query(
        self, target: str | None = None, action: str | None = None, limit: int = 100
    ) -> list[AuditRecord]:
        """The newest ``limit`` records, oldest first, filtered by target and action."""
        where, args = [], []
        if target:
            where.append("target = ?")
            args.append(target)
        if action:
            where.append("action = ?")
            args.append(action)
        sql = "SELECT id, time, actor, action, target, outcome, status, detail FROM audit"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(sql, (*args, limit)).fetchall()
        fields = list(AuditRecord.model_fields)
        return [AuditRecord(**dict(zip(fields, row, strict=True))) for row in reversed(rows)]
