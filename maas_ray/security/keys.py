"""API keys: created once, shown once, stored only as a SHA-256 hash under MAAS_HOME.

A key reads ``maas_<id>_<secret>``: ``id`` names the key in lists and audit
records, ``secret`` is 256 random bits. A hash of a 256-bit random secret needs
no salt or slow KDF (those protect guessable passwords) and costs about a
microsecond per request.

The store is one JSON file (mode 0600), rewritten whole under a file lock and
swapped in atomically; every replica re-reads it when it changes, checking at
most every ``auth_refresh_s``, which bounds how long a revoked key still works.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from maas_ray.errors import KeyNotFound
from maas_ray.security.scopes import check_scope

PREFIX = "maas_"
KEYS_FILE = "keys.json"


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


class KeyStore:
    """The key file under ``MAAS_HOME/security``; writers take a file lock."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / KEYS_FILE

    def create(
        self, scopes: list[str], name: str | None = None, expires_in_days: float | None = None
    ) -> tuple[KeyRecord, str]:
        """A new key with ``scopes``; returns its record and the key (shown only now)."""
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
        with self._locked() as records:
            records.append(record)
        return record, key

    def revoke(self, kid: str) -> KeyRecord:
        """Mark a key revoked (kept for the audit trail); revoking twice is harmless."""
        with self._locked() as records:
            for record in records:
                if record.id == kid:
                    if record.revoked_at is None:
                        record.revoked_at = time.time()
                    return record
        raise KeyNotFound(f"no API key with id '{kid}'")

    def records(self) -> list[KeyRecord]:
        """Every key, revoked ones too, oldest first."""
        return read_records(self.path)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[KeyRecord]]:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.folder / ".keys.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            records = read_records(self.path)
            yield records
            tmp = self.path.with_suffix(".tmp")
            data = [r.model_dump() | {"hash": r.hash} for r in records]
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                json.dump({"keys": data}, out, indent=1)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)


def read_records(path: Path) -> list[KeyRecord]:
    """The records of a key file; a missing file holds none."""
    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    return [KeyRecord.model_validate(item) for item in raw.get("keys", [])]


class KeyCache:
    """What a replica checks keys against: hash -> record, re-read when the file changes."""

    def __init__(self, path: Path, refresh_s: float) -> None:
        self.path = path
        self.refresh_s = refresh_s
        self._by_hash: dict[str, KeyRecord] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = float("-inf")

    def lookup(self, key: str) -> KeyRecord | None:
        """The usable record of ``key``, or None (unknown, revoked or expired)."""
        now = time.monotonic()
        digest = hash_key(key)
        # A miss re-checks at once (a key created a moment ago); a stat is cheap and
        # the file is read again only when it changed.
        if now - self._checked >= self.refresh_s or digest not in self._by_hash:
            self._checked = now
            self._reload()
        record = self._by_hash.get(digest)
        return record if record is not None and record.usable(time.time()) else None

    def _reload(self) -> None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._by_hash, self._stamp = {}, None
            return
        stamp = (st.st_mtime_ns, st.st_ino, st.st_size)
        if stamp != self._stamp:
            self._by_hash = {r.hash: r for r in read_records(self.path)}
            self._stamp = stamp


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
        record = {r.hash: r for r in store.records()}.get(hash_key(current))
        if record is not None and record.usable(time.time()):
            return False
    _, key = store.create(["admin"], name="admin")
    admin_key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(admin_key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(key + "\n")
    os.chmod(admin_key_file, 0o600)  # O_CREAT's mode does not apply to an existing file
    return True
