"""API keys: created once, shown once, stored only as a SHA-256 hash.

A key reads ``maas_<id>_<secret>``: ``id`` names the key in lists and audit
records, ``secret`` is 256 random bits. A hash of a 256-bit random secret needs
no salt or slow KDF (those protect guessable passwords) and costs about a
microsecond per request.

The keys live in the security database (``maas_ray.security.db``: SQLite under
MAAS_HOME by default, PostgreSQL in production); every replica keeps them in
memory and asks the database whether they changed at most every
``auth_refresh_s``, which bounds how long a revoked key still works.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from maas_ray.errors import KeyNotFound, PlatformUnavailable
from maas_ray.security.scopes import check_scope

logger = logging.getLogger(__name__)

PREFIX = "maas_"


class KeyRecord(BaseModel):
    """One key as listed: never the secret, only its hash (kept out of answers)."""

    id: str
    name: str
    scopes: list[str]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None
    hash: str = Field(default="", exclude=True)

    def usable(self, now: float) -> bool:
        """Not revoked and not expired at ``now`` (epoch seconds)."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class IssuedKey(KeyRecord):
    """A key just created: its record and, this once, its secret."""

    key: str = Field(description="The secret: 'Authorization: Bearer <key>'; not shown again.")


def hash_key(key: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key: str) -> str | None:
    """The id part of a well-formed key, else None."""
    if not key.startswith(PREFIX):
        return None
    kid, sep, secret = key[len(PREFIX) :].partition("_")
    return kid if sep and kid and secret else None


def _sql() -> tuple[Any, Any]:
    """sqlalchemy and the security database, imported on first use: the CLI and the SDK
    import this module for its records and never open the database."""
    import sqlalchemy as sa

    from maas_ray.security import db

    return sa, db


class KeyStore:
    """The API keys in the security database (see ``maas_ray.security.db``)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def create(
        self, scopes: list[str], name: str | None = None, expires_in_days: float | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key with ``scopes``; returns its record and the key (shown only now)."""
        sa, db = _sql()
        checked = sorted({check_scope(s) for s in scopes})
        kid = secrets.token_hex(6)
        key = f"{PREFIX}{kid}_{secrets.token_urlsafe(32)}"
        now = time.time()
        record = KeyRecord(
            id=kid,
            name=name or f"key-{kid}",
            scopes=checked,
            created_at=now,
            expires_at=None if expires_in_days is None else now + expires_in_days * 86400,
            hash=hash_key(key),
        )
        with db.transaction(self.url) as conn:
            conn.execute(db.api_keys.insert(), _row(record))
        return record, key

    def revoke(self, kid: str) -> KeyRecord:
        """Mark a key revoked (kept for the audit trail); revoking twice is harmless."""
        sa, db = _sql()
        table = db.api_keys
        with db.transaction(self.url) as conn:
            conn.execute(
                table.update()
                .where(table.c.id == kid, table.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
            row = conn.execute(sa.select(table).where(table.c.id == kid)).mappings().first()
        if row is None:
            raise KeyNotFound(f"no API key with id '{kid}'")
        return _record(row)

    def records(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        sa, db = _sql()
        table = db.api_keys
        with db.transaction(self.url) as conn:
            rows = conn.execute(sa.select(table).order_by(table.c.created_at)).mappings().all()
        return [_record(row) for row in rows]

    def find(self, digest: str) -> KeyRecord | None:
        """The record whose key hashes to ``digest``, usable or not."""
        sa, db = _sql()
        table = db.api_keys
        with db.transaction(self.url) as conn:
            row = conn.execute(sa.select(table).where(table.c.hash == digest)).mappings().first()
        return None if row is None else _record(row)

    def stamp(self) -> tuple[int, int]:
        """(keys, revoked keys): keys are only ever added or revoked, so every write
        changes it and a reader re-reads the keys only when it did."""
        sa, db = _sql()
        table = db.api_keys
        query = sa.select(sa.func.count(), sa.func.count(table.c.revoked_at))
        with db.transaction(self.url) as conn:
            total, revoked = conn.execute(query).one()
        return int(total), int(revoked)


def _row(record: KeyRecord) -> dict[str, Any]:
    return record.model_dump(exclude={"scopes"}) | {
        "scopes": json.dumps(record.scopes),
        "hash": record.hash,
    }


def _record(row: Any) -> KeyRecord:
    return KeyRecord.model_validate(dict(row) | {"scopes": json.loads(row["scopes"])})


class KeyCache:
    """What a replica checks keys against: hash -> record, re-read when the store changed.

    Every ``refresh_s`` at most it asks the store for its stamp (one small query) and
    re-reads the keys only when the stamp moved; a key not in the cache is looked up
    by its hash at once (a key created a moment ago), once: a hash the store did not
    know is remembered (the last ``UNKNOWN_KEPT``), so a flood of made-up keys costs no
    query each. A real key cannot be among them: its 256-bit secret was not known
    before it was made. While the database does not answer, the keys read last keep
    working and unknown keys are a 503.
    """

    UNKNOWN_KEPT = 10_000

    def __init__(self, store: KeyStore, refresh_s: float) -> None:
        self.store = store
        self.refresh_s = refresh_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._unknown: dict[str, None] = {}  # insertion-ordered: the oldest goes first
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")

    def refresh(self) -> None:
        """Read the keys now (a replica before its first request: the database's
        connection and first read are then not a request's wait)."""
        self._checked = time.monotonic()
        self._reload()

    def lookup(self, key: str) -> KeyRecord | None:
        """The usable record of ``key``, or None (unknown, revoked or expired)."""
        now = time.monotonic()
        digest = hash_key(key)
        if now - self._checked >= self.refresh_s:
            self._checked = now
            self._reload()
        record = self._by_hash.get(digest)
        if record is None and digest not in self._unknown:
            record = self.store.find(digest)
            if record is not None:
                self._by_hash[digest] = record
            else:
                self._unknown[digest] = None
                if len(self._unknown) > self.UNKNOWN_KEPT:
                    del self._unknown[next(iter(self._unknown))]
        return record if record is not None and record.usable(time.time()) else None

    def _reload(self) -> None:
        try:
            stamp = self.store.stamp()
            if stamp != self._stamp:
                self._by_hash = {r.hash: r for r in self.store.records()}
                self._stamp = stamp
        except PlatformUnavailable as exc:
            logger.warning("keys not refreshed, the last ones read stay in use: %s", exc)


def client_key(api_key: str | None, admin_key_file: Path) -> str | None:
    """The key a CLI or SDK sends: MAAS_API_KEY, else the admin key of ``maas up``."""
    if api_key:
        return api_key
    try:
        return admin_key_file.read_text().strip() or None
    except OSError:
        return None


def ensure_admin_key(store: KeyStore, admin_key_file: Path) -> bool:
    """Make sure ``admin_key_file`` holds a usable admin key; True when one was created.

    ``maas up`` calls this: on the first run, or when the key there was revoked or
    lost from the store, it creates a key named ``admin`` and writes it 0600.
    """
    current = client_key(None, admin_key_file)
    if current is not None:
        record = store.find(hash_key(current))
        if record is not None and record.usable(time.time()):
            return False
    _, key = store.create(["admin"], name="admin")
    admin_key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(admin_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.chmod(admin_key_file, 0o600)  # O_CREAT's mode does not apply to an existing file
    return True
