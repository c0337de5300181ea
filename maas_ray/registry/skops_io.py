"""``skops.io``, imported cheaply: import this module instead of ``skops.io``.

Importing ``skops.io`` computes its lists of trusted type names
(``skops.io._trusted_types``): ``sklearn.utils.all_estimators()`` walks and inspects
every scikit-learn module, and each SciPy ufunc's module is looked up by a scan of
``sys.modules``; a second or more of CPU in every process that loads or registers a
scikit-learn model, every replica's start among them, for lists that change only
with the versions of skops, scikit-learn, NumPy and SciPy. So:

- The first process to import it computes them as skops does and writes them to a
  cache file named by those four versions (``~/.cache/maas_ray``, or
  ``$XDG_CACHE_HOME``), owner-only; every later one puts a module holding the cached
  lists in ``sys.modules`` as ``skops.io._trusted_types`` before skops imports it. A
  cache file that another user owns or may write is not read (it would widen what
  skops trusts), nor a malformed one.
- The walk itself keeps PyTorch out: it does not enter a package that is already in
  ``sys.modules`` without a ``__path__``, and a stand-in for
  ``sklearn.externals.array_api_compat.torch`` sits there while it runs (all of
  PyTorch, 1.6 s more, for a package where no estimator lives).

Either way the lists are those a plain ``import skops.io`` computes
(tests/unit/test_skops_io.py compares them).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import tempfile
import types
from importlib import metadata
from pathlib import Path

ARRAY_API_TORCH = "sklearn.externals.array_api_compat.torch"
TRUSTED_MODULE = "skops.io._trusted_types"
SUFFIX = "_TYPE_NAMES"  # the lists skops's loaders import from it


def cache_file() -> Path:
    """Where the trusted lists of these skops, scikit-learn, NumPy and SciPy are kept."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "maas_ray"
    versions = "-".join(metadata.version(d) for d in ("skops", "scikit-learn", "numpy", "scipy"))
    return root / f"skops-trusted-{versions}.json"


def _read(path: Path) -> dict[str, list[str]] | None:
    try:
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return None  # someone else could have widened what skops trusts
        lists = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(lists, dict) or "SKLEARN_ESTIMATOR" + SUFFIX not in lists:
        return None
    ok = all(
        k.endswith(SUFFIX) and isinstance(v, list) and all(isinstance(n, str) for n in v)
        for k, v in lists.items()
    )
    return lists if ok else None


def _write(path: Path, lists: dict[str, list[str]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".skops-")  # mode 0600
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(lists, out)
        os.replace(tmp, path)  # whole or not at all, for processes reading meanwhile
    except OSError:
        pass  # a read-only home: the next process walks again


def _cached_module(lists: dict[str, list[str]]) -> types.ModuleType:
    """A ``skops.io._trusted_types`` holding the cached lists (and the two small
    lists of builtins it also defines)."""
    module = types.ModuleType(TRUSTED_MODULE)
    module.__package__ = "skops.io"
    module.PRIMITIVES_TYPES = [int, float, str, bool]  # type: ignore[attr-defined]
    module.CONTAINER_TYPES = [list, set, map, tuple]  # type: ignore[attr-defined]
    for name, names in lists.items():
        setattr(module, name, list(names))
    return module


def _import() -> types.ModuleType:
    if "skops.io" in sys.modules:
        import skops.io

        return skops.io
    path = cache_file()
    lists = _read(path)
    stand_in = None
    if lists is not None:
        sys.modules[TRUSTED_MODULE] = _cached_module(lists)
    elif "torch" not in sys.modules and ARRAY_API_TORCH not in sys.modules:
        stand_in = types.ModuleType(ARRAY_API_TORCH)  # no __path__: the walk stops here
        sys.modules[ARRAY_API_TORCH] = stand_in
    try:
        import skops.io
        import skops.io._trusted_types as trusted
    except BaseException:
        if lists is not None:
            sys.modules.pop(TRUSTED_MODULE, None)
        raise
    finally:
        if stand_in is not None and sys.modules.get(ARRAY_API_TORCH) is stand_in:
            del sys.modules[ARRAY_API_TORCH]
    if lists is None:
        _write(path, {k: list(v) for k, v in vars(trusted).items() if k.endswith(SUFFIX)})
    return skops.io


sio = _import()
