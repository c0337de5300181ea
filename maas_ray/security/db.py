"""The security database: API keys and the audit log, through SQLAlchemy.

One database URL (``MAAS_SECURITY_DB``) holds both tables. By default it is a
SQLite file, ``MAAS_HOME/security/security.db`` (mode 0600, WAL so readers never
wait for the writer); in production it is a database on the PostgreSQL server
that MLflow uses, so replicas on every node read the same keys.

The tables carry a ``maas_`` prefix so they can share a database with MLflow's own.
Each process opens one engine per URL (a connection pool) on first use and creates
missing tables then (``CREATE TABLE IF NOT EXISTS``: many replicas may start at once).

``import_files`` moves what older releases kept in files (``keys.json`` and
``audit.db`` under ``MAAS_HOME/security``) into the database once; the files are
kept, renamed ``*.imported``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from maas_ray.errors import PlatformUnavailable

logger = logging.getLogger(__name__)

OLD_KEYS_FILE = "keys.json"
OLD_AUDIT_FILE = "audit.db"

metadata = sa.MetaData()

api_keys = sa.Table(
    "maas_api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("scopes", sa.Text, nullable=False),  # a JSON list
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("expires_at", sa.Float, nullable=True),
    sa.Column("revoked_at", sa.Float, nullable=True),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("maas_api_keys_hash", "hash", unique=True),
)

audit = sa.Table(
    "maas_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("time", sa.Float, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target", sa.Text, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Index("maas_audit_target", "target"),
)


def shown(url: str) -> str:
    """``url`` with its password hidden, for messages and logs."""
    return make_url(url).render_as_string(hide_password=True)


@functools.cache
def engine(url: str) -> Engine:
    """This process's engine for ``url``, its tables created where missing."""
    parsed = make_url(url)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and parsed.database:
        _owner_only_file(Path(parsed.database))
    made = sa.create_engine(
        url, connect_args={"timeout": 30} if sqlite else {}, pool_pre_ping=not sqlite
    )
    if sqlite:
        sa.event.listen(made, "connect", _sqlite_pragmas)
    with made.begin() as conn:
        for table in metadata.sorted_tables:
            conn.execute(CreateTable(table, if_not_exists=True))
            for index in table.indexes:
                conn.execute(CreateIndex(index, if_not_exists=True))
    return made


@contextlib.contextmanager
def transaction(url: str) -> Iterator[sa.Connection]:
    """A transaction on the database at ``url``; one that does not answer is a 503."""
    try:
        with engine(url).begin() as conn:
            yield conn
    except (sa.exc.OperationalError, OSError) as exc:  # refused, timed out, locked, no disk
        reason = exc.orig if isinstance(exc, sa.exc.OperationalError) else exc
        raise PlatformUnavailable(
            f"the security database ({shown(url)}) did not answer: {reason}; nothing was changed"
        ) from exc


def _owner_only_file(path: Path) -> None:
    """Create the SQLite file 0600 in a 0700 folder before SQLite opens it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    path.chmod(0o600)


def _sqlite_pragmas(conn: Any, _record: Any) -> None:
    cursor = conn.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def import_files(url: str, folder: Path) -> tuple[int, int]:
    """Move ``keys.json`` and ``audit.db`` of ``folder`` into the database at ``url``.

    Returns (keys, audit records) imported. Keys already in the database (same id)
    are left as they are. Each file is renamed ``*.imported`` once its rows are in.
    """
    keys = _import_keys(url, folder / OLD_KEYS_FILE)
    records = _import_audit(url, folder / OLD_AUDIT_FILE)
    return keys, records


def _import_keys(url: str, path: Path) -> int:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return 0
    rows = [
        {
            "id": item["id"],
            "name": item["name"],
            "scopes": json.dumps(item["scopes"]),
            "created_at": item["created_at"],
            "expires_at": item.get("expires_at"),
            "revoked_at": item.get("revoked_at"),
            "hash": item["hash"],
        }
        for item in raw.get("keys", [])
    ]
    with engine(url).begin() as conn:
        present = set(conn.execute(sa.select(api_keys.c.id)).scalars())
        new = [row for row in rows if row["id"] not in present]
        if new:
            conn.execute(api_keys.insert(), new)
    path.rename(path.with_name(path.name + ".imported"))
    logger.info("moved %d API keys from %s into %s", len(new), path, shown(url))
    return len(new)


def _import_audit(url: str, path: Path) -> int:
    if not path.exists():
        return 0
    old = sqlite3.connect(path, timeout=30)
    try:
        names = [c.name for c in audit.columns if c.name != "id"]
        rows = old.execute(f"SELECT {', '.join(names)} FROM audit ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # no audit table: nothing was ever recorded
        rows = []
    finally:
        old.close()  # the last connection: SQLite folds its WAL back into the file
    if rows:
        with engine(url).begin() as conn:
            conn.execute(audit.insert(), [dict(zip(names, row, strict=True)) for row in rows])
    for suffix in ("", "-wal", "-shm"):
        part = path.with_name(path.name + suffix)
        if part.exists():
            part.rename(path.with_name(f"{path.name}.imported{suffix}"))
    logger.info("moved %d audit records from %s into %s", len(rows), path, shown(url))
    return len(rows)
