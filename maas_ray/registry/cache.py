"""Verified copies of model versions' artifacts on this machine, for the next load.

A replica loads its version from the MLflow server: the artifacts are downloaded and
checked against the digest recorded at registration. Each later load of the same
version on this machine (a replacement replica, a scale-out, a restore after Ray
restarted, a shared-pool model loaded again) copies what was verified then instead:
it skips the download, and it works while the MLflow server is down, so a replica that
dies during an outage comes back. The copy is checked against the recorded digest
again before it is loaded; an entry that differs is dropped and the load goes to
MLflow.

Entries are keyed by registry, model and version (what a version's artifacts are does
not change once registered), live under ``Settings.model_cache_dir`` (owner-only), and
are bounded by ``Settings.model_cache_mb``: the least recently loaded go first, and a
version larger than the whole budget is not kept. ``MAAS_MODEL_CACHE_MB=0`` turns the
cache off. Replicas on several nodes of one machine share it; an entry appears whole
or not at all (built aside, then renamed into place).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import stat
import uuid
from pathlib import Path

import psutil

from maas_ray.registry.digest import artifact_digest
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)

META = "entry.json"
ARTIFACTS = "artifacts"
PART = ".part-"  # then the building process's id: a folder being filled


def _link_or_copy(src: str, dst: str) -> str:
    """A hard link where both folders share a file system (no bytes written), else a
    copy. A loader that wrote into a linked file would change the kept one too: the
    digest check of the next load finds that and drops the entry."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


class ModelCache:
    """Verified artifact trees under ``root``, at most ``budget`` bytes in all."""

    def __init__(self, root: Path, budget: int) -> None:
        self.root = root
        self.budget = budget

    @classmethod
    def of(cls, settings: Settings) -> ModelCache | None:
        """The cache the settings ask for, or None (turned off, or a folder this user
        does not own or others may write: a copy there could not be trusted)."""
        if settings.model_cache_mb <= 0:
            return None
        root = settings.model_cache_dir
        try:
            root.mkdir(mode=0o700, parents=True, exist_ok=True)
            info = root.stat()
        except OSError as exc:
            logger.warning("no model cache at %s: %s", root, exc)
            return None
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            logger.warning("no model cache: %s is not this user's alone", root)
            return None
        return cls(root, int(settings.model_cache_mb * 1024 * 1024))

    @staticmethod
    def key(uri: str, name: str, version: str) -> str:
        """The entry's folder name: registry, model and version, hashed."""
        return hashlib.sha256(f"{uri}\n{name}\n{version}".encode()).hexdigest()[:32]

    def entry(self, uri: str, name: str, version: str) -> Path:
        return self.root / self.key(uri, name, version)

    def copy_to(self, uri: str, name: str, version: str, dst: Path) -> Path | None:
        """A copy of the version's kept artifacts at ``dst`` (a new folder), checked
        against the digest recorded when they were verified; None when there is none
        or it differs (then the entry is dropped)."""
        entry = self.entry(uri, name, version)
        if not entry.exists():
            return None
        try:
            digest = json.loads((entry / META).read_text(encoding="utf-8"))["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            self._drop(entry)  # not one this module made whole: the next load keeps anew
            return None
        try:
            shutil.copytree(entry / ARTIFACTS, dst, copy_function=_link_or_copy)
        except OSError:
            shutil.rmtree(dst, ignore_errors=True)
            return None  # evicted while this copied
        if artifact_digest(dst) != digest:
            logger.warning("dropped the kept copy of %s v%s: it changed", name, version)
            self._drop(entry)
            shutil.rmtree(dst, ignore_errors=True)
            return None
        try:
            os.utime(entry)  # recently used: evicted last
        except OSError:
            pass
        return dst

    def keep(self, uri: str, name: str, version: str, digest: str, src: Path) -> None:
        """Keep a copy of ``src``, verified to have ``digest``, for the next load."""
        entry = self.entry(uri, name, version)
        size = _size(src)
        if entry.exists() or size > self.budget:
            return
        self._clear_parts()
        part = self.root / f"{PART}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            shutil.copytree(src, part / ARTIFACTS, copy_function=_link_or_copy)
            meta = {"digest": digest, "bytes": size, "model": name, "version": version}
            (part / META).write_text(json.dumps(meta), encoding="utf-8")
            part.rename(entry)  # whole or not at all; another process may have won
        except OSError as exc:
            shutil.rmtree(part, ignore_errors=True)
            if not entry.exists():
                logger.warning("could not keep %s v%s: %s", name, version, exc)
            return
        self.evict(keep=entry)

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last used, bytes, folder) of every entry, least recently used first."""
        found = []
        for path in self.root.iterdir():
            if path.name.startswith(PART):
                continue
            try:
                size = int(json.loads((path / META).read_text(encoding="utf-8"))["bytes"])
                found.append((path.stat().st_mtime, size, path))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(found, key=lambda e: e[0])

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Drop the least recently used entries until the rest fit the budget."""
        entries = self.entries()
        total = sum(size for _, size, _ in entries)
        dropped = []
        for _, size, path in entries:
            if total <= self.budget:
                break
            if path == keep:
                continue
            self._drop(path)
            total -= size
            dropped.append(path)
        return dropped

    def _drop(self, entry: Path) -> None:
        # Renamed first: a reader finds it whole or not at all.
        gone = self.root / f"{PART}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            entry.rename(gone)
        except OSError:
            return
        shutil.rmtree(gone, ignore_errors=True)

    def _clear_parts(self) -> None:
        """Remove folders left half built by a process that no longer runs."""
        for part in self.root.glob(f"{PART}*"):
            pid = part.name.removeprefix(PART).split("-", 1)[0]
            if pid.isdigit() and not psutil.pid_exists(int(pid)):
                shutil.rmtree(part, ignore_errors=True)
