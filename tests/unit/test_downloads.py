"""A replica's download folder: named by its process, and swept by the next load
once that process is gone (a replica SIGKILLed while loading cannot remove it)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from maas_ray.serving.runtime import DOWNLOAD_PREFIX, download_dir


def test_a_dead_loaders_folder_goes_and_a_running_ones_stays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = tmp_path / f"{DOWNLOAD_PREFIX}{gone.stdout.strip()}-capm-5-abcd1234"
    (dead / "model").mkdir(parents=True)
    alive = tmp_path / f"{DOWNLOAD_PREFIX}{os.getppid()}-iris-1-efgh5678"
    alive.mkdir()
    other = tmp_path / "maas-digits-ijkl9012"  # not a download: never touched
    other.mkdir()

    made = Path(download_dir("my-model", "3"))

    assert made.parent == tmp_path
    assert made.name.startswith(f"{DOWNLOAD_PREFIX}{os.getpid()}-my-model-3-")
    assert not dead.exists()
    assert alive.is_dir()
    assert other.is_dir()
