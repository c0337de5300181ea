"""SHA-256 digest of a model's artifact folder (paths and bytes, order-independent)."""

from __future__ import annotations

import hashlib
from pathlib import Path


def artifact_digest(root: str | Path) -> str:
    """Return a hex SHA-256 over every file under ``root``.

    Each file contributes its POSIX relative path and the digest of its bytes, in
    sorted path order, so the same tree always gives the same digest wherever it
    was downloaded to.
    """
    base = Path(root)
    outer = hashlib.sha256()
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        inner = hashlib.sha256()
        with path.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                inner.update(chunk)
        outer.update(path.relative_to(base).as_posix().encode())
        outer.update(b"\0")
        outer.update(inner.digest())
    return outer.hexdigest()
