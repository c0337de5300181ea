"""registry/skops_io.py: skops.io without PyTorch and, from the second process on,
without computing its trusted lists; the lists the same as a plain import's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

PRINT_TRUSTED = (
    "import json, sys; {imp}; "
    "import skops.io._trusted_types as t; "
    "lists = {{k: sorted(v) for k, v in vars(t).items() if k.endswith('_TYPE_NAMES')}}; "
    "print(json.dumps({{'torch': 'torch' in sys.modules, 'lists': lists}}))"
)


def _fresh(imp: str, cache: Path) -> dict[str, object]:
    """What a new interpreter sees after ``imp`` (each import runs once per process)."""
    code = PRINT_TRUSTED.format(imp=imp)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_skops_io_comes_without_torch_and_trusts_the_same_types(tmp_path: Path) -> None:
    first = _fresh("import maas_ray.registry.skops_io", tmp_path)  # computes, writes
    (written,) = (tmp_path / "maas_ray").iterdir()
    assert written.stat().st_mode & 0o077 == 0
    cached = _fresh("import maas_ray.registry.skops_io", tmp_path)  # reads
    plain = _fresh("import skops.io", tmp_path)
    assert first["torch"] is False
    assert cached["torch"] is False
    assert plain["torch"] is True  # what the stand-in saves: all of PyTorch
    assert first["lists"] == plain["lists"] == cached["lists"]
    lists = plain["lists"]
    assert isinstance(lists, dict)
    assert len(lists["SKLEARN_ESTIMATOR_TYPE_NAMES"]) > 100
    assert len(lists["SCIPY_UFUNC_TYPE_NAMES"]) > 100


def test_a_cache_file_others_may_write_or_a_bad_one_is_not_read(tmp_path: Path) -> None:
    from maas_ray.registry import skops_io

    cache = tmp_path / "lists.json"
    widened = {"SKLEARN_ESTIMATOR_TYPE_NAMES": ["builtins.eval"]}
    cache.write_text(json.dumps(widened))
    os.chmod(cache, 0o600)
    assert skops_io._read(cache) == widened  # owner-only: read as it is
    os.chmod(cache, 0o666)
    assert skops_io._read(cache) is None  # anyone may write it: not read
    os.chmod(cache, 0o620)
    assert skops_io._read(cache) is None  # the group may write it: not read
    os.chmod(cache, 0o600)
    for bad in ("{not json", "[]", '{"OTHER": []}', '{"SKLEARN_ESTIMATOR_TYPE_NAMES": [1]}'):
        cache.write_text(bad)
        assert skops_io._read(cache) is None, bad


def test_a_fresh_process_walks_again_past_a_file_it_does_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file a new process would read, widened by someone else: the process trusts
    what skops's own walk finds, and writes that back, owner-only."""
    from maas_ray.registry import skops_io

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    written = skops_io.cache_file()
    written.parent.mkdir()
    written.write_text(json.dumps({"SKLEARN_ESTIMATOR_TYPE_NAMES": ["builtins.eval"]}))
    os.chmod(written, 0o666)
    seen = _fresh("import maas_ray.registry.skops_io", tmp_path)["lists"]
    assert isinstance(seen, dict)
    assert "builtins.eval" not in seen["SKLEARN_ESTIMATOR_TYPE_NAMES"]
    assert len(seen["SKLEARN_ESTIMATOR_TYPE_NAMES"]) > 100
    assert written.stat().st_mode & 0o077 == 0
    stored = json.loads(written.read_text())
    assert {k: sorted(v) for k, v in stored.items()} == seen


def test_the_real_array_api_package_imports_afterwards(tmp_path: Path) -> None:
    code = (
        "import sys; from maas_ray.registry.skops_io import sio, ARRAY_API_TORCH; "
        "assert ARRAY_API_TORCH not in sys.modules; "
        "import sklearn.externals.array_api_compat.torch as t; print(hasattr(t, '__path__'))"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.strip() == "True"
