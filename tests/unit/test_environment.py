"""serving/environment.py: what a saved model asks for that this environment lacks."""

from __future__ import annotations

import logging
import platform
from importlib import metadata
from pathlib import Path

import pytest

from maas_ray.serving.environment import check, mismatches


def test_only_unmet_requirements_are_named() -> None:
    numpy = metadata.version("numpy")
    found = mismatches(
        [
            f"numpy=={numpy}",  # met
            "numpy<1",  # not met
            "no-such-package-maas==1.0",  # not installed
            "pandas; python_version < '3'",  # its marker excludes this Python
            "./local/wheel.whl",  # a path: not checked
            "scikit-learn",  # any version
        ]
    )
    assert found == [
        f"numpy (current: {numpy}, required: numpy<1)",
        "no-such-package-maas (current: uninstalled, required: no-such-package-maas==1.0)",
    ]


def test_check_reads_the_saved_requirements_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "requirements.txt").write_text(
        "# written by MLflow\n-c constraints.txt\nnumpy<1  # too old\nscikit-learn\n"
    )
    (tmp_path / "constraints.txt").write_text("scipy>=1\n")
    with caplog.at_level(logging.WARNING):
        found = check(tmp_path, "2.7.18")
    assert [f.split(" ")[0] for f in found] == ["numpy"]
    text = caplog.text
    assert "numpy (current:" in text
    # MLflow's own warning for another Python (serving/environment.py calls it).
    assert "`Python 2.7.18`, differs from" in text
    assert f"`Python {platform.python_version()}`" in text


def test_a_model_saved_here_is_quiet(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        assert check(tmp_path, platform.python_version()) == []  # no requirements.txt
    assert caplog.text == ""
