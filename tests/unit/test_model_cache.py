"""This machine's verified copies of loaded versions (registry/cache.py): kept whole,
checked again on every load, the least recently loaded evicted past the budget, and
only in a folder that is the user's alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maas_ray.registry.cache import ARTIFACTS, META, PART, ModelCache
from maas_ray.registry.digest import artifact_digest
from maas_ray.settings import Settings

URI = "http://127.0.0.1:5000"


def _tree(root: Path, size: int, mark: str = "a") -> tuple[Path, str]:
    """A model folder of ``size`` bytes in two files, and its digest."""
    (root / "model").mkdir(parents=True)
    (root / "MLmodel").write_text(f"flavors: {mark}\n")
    (root / "model" / "weights.bin").write_bytes(b"w" * (size - (root / "MLmodel").stat().st_size))
    return root, artifact_digest(root)


@pytest.fixture
def cache(tmp_path: Path) -> ModelCache:
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    return ModelCache(root, budget=10_000)


def test_a_kept_version_copies_back_whole_and_checked(cache: ModelCache, tmp_path: Path) -> None:
    src, digest = _tree(tmp_path / "dl", 2_000)
    cache.keep(URI, "iris", "1", digest, src)
    copy = cache.copy_to(URI, "iris", "1", tmp_path / "load")
    assert copy is not None
    assert artifact_digest(copy) == digest
    # Another version, model or registry is another entry: none kept for those.
    assert cache.copy_to(URI, "iris", "2", tmp_path / "v2") is None
    assert cache.copy_to(URI, "wine", "1", tmp_path / "wine") is None
    assert cache.copy_to("http://127.0.0.1:5001", "iris", "1", tmp_path / "other") is None
    assert not (tmp_path / "v2").exists()
    # Keeping it again changes nothing (another replica of the version finished first).
    cache.keep(URI, "iris", "1", digest, src)
    assert len(cache.entries()) == 1


def test_a_kept_copy_that_changed_is_dropped(cache: ModelCache, tmp_path: Path) -> None:
    src, digest = _tree(tmp_path / "dl", 2_000)
    cache.keep(URI, "iris", "1", digest, src)
    entry = cache.entry(URI, "iris", "1")
    weights = entry / ARTIFACTS / "model" / "weights.bin"
    weights.write_bytes(weights.read_bytes() + b"\0")
    assert cache.copy_to(URI, "iris", "1", tmp_path / "load") is None
    assert not entry.exists()
    assert not (tmp_path / "load").exists()
    assert [p.name for p in cache.root.iterdir()] == []


def test_past_the_budget_the_least_recently_loaded_go(cache: ModelCache, tmp_path: Path) -> None:
    for version in ("1", "2", "3"):
        src, digest = _tree(tmp_path / f"dl{version}", 3_000, mark=version)
        cache.keep(URI, "m", version, digest, src)
        os.utime(cache.entry(URI, "m", version), (time.time() - 100 + int(version),) * 2)
    assert cache.copy_to(URI, "m", "1", tmp_path / "use1") is not None  # 1 now most recent
    src, digest = _tree(tmp_path / "dl4", 3_000, mark="4")
    cache.keep(URI, "m", "4", digest, src)  # 12,000 bytes > 10,000: the oldest use goes
    kept = {json.loads((p / META).read_text())["version"] for _, _, p in cache.entries()}
    assert kept == {"1", "3", "4"}
    # A version larger than the whole budget is not kept (nor does it evict the rest).
    big, digest = _tree(tmp_path / "big", 20_000, mark="big")
    cache.keep(URI, "m", "5", digest, big)
    assert cache.copy_to(URI, "m", "5", tmp_path / "use5") is None
    assert len(cache.entries()) == 3


def test_a_dead_builders_part_goes_a_running_ones_stays(cache: ModelCache, tmp_path: Path) -> None:
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = cache.root / f"{PART}{gone.stdout.strip()}-abcd1234"
    (dead / ARTIFACTS).mkdir(parents=True)
    alive = cache.root / f"{PART}{os.getppid()}-efgh5678"
    alive.mkdir()
    src, digest = _tree(tmp_path / "dl", 1_000)
    cache.keep(URI, "iris", "1", digest, src)
    assert not dead.exists()
    assert alive.exists()
    assert [e[2] for e in cache.entries()] == [cache.entry(URI, "iris", "1")]


def test_settings_turn_it_off_or_find_a_folder_they_cannot_trust(tmp_path: Path) -> None:
    assert ModelCache.of(Settings(home=tmp_path / "off", model_cache_mb=0)) is None
    on = ModelCache.of(Settings(home=tmp_path / "on", model_cache_mb=1))
    assert on is not None
    assert on.budget == 1024 * 1024
    assert on.root == tmp_path / "on" / "model-cache"
    assert on.root.stat().st_mode & 0o777 == 0o700
    shared = tmp_path / "shared" / "model-cache"
    shared.mkdir(parents=True)
    shared.chmod(0o777)
    assert ModelCache.of(Settings(home=tmp_path / "shared")) is None


def test_an_entry_without_its_record_is_dropped_and_kept_anew(
    cache: ModelCache, tmp_path: Path
) -> None:
    src, digest = _tree(tmp_path / "dl", 1_000)
    cache.keep(URI, "iris", "1", digest, src)
    (cache.entry(URI, "iris", "1") / META).unlink()
    assert cache.copy_to(URI, "iris", "1", tmp_path / "load") is None
    cache.keep(URI, "iris", "1", digest, src)
    assert cache.copy_to(URI, "iris", "1", tmp_path / "again") is not None
