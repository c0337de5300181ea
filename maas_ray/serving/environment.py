"""Does this Python environment satisfy what a model version was saved with?

MLflow's ``pyfunc.load_model`` asks the same, but maps every installed module to its
distribution first (``importlib.metadata.packages_distributions``, a walk over every
installed package's file list): about half a second of CPU in each replica that loads a
model, on every start and restart. The same answer comes from looking up only the packages the
model names, which takes milliseconds; the replica logs the same warning MLflow
would (and loads the model anyway, as MLflow does).
"""

from __future__ import annotations

import logging
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

logger = logging.getLogger(__name__)


def mismatches(requirements: list[str]) -> list[str]:
    """``name (current: X, required: SPEC)`` for each requirement this environment
    does not meet; lines that are not a plain requirement (paths, URLs, options) and
    requirements whose marker excludes this platform are not checked."""
    out = []
    for line in requirements:
        try:
            req = Requirement(line)
        except InvalidRequirement:
            continue
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            installed: str | None = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or (req.specifier and not req.specifier.contains(installed, True)):
            out.append(f"{req.name} (current: {installed or 'uninstalled'}, required: {line})")
    return out


def check(local: Path, python_version: str | None) -> list[str]:
    """Log a warning naming what the saved model's ``requirements.txt`` (read by
    MLflow's own parser) asks for that this environment lacks, and MLflow's warning for
    another Python version; return the mismatched packages."""
    from mlflow.pyfunc import (
        _get_pip_requirements_from_model_path,
        _warn_potentially_incompatible_py_version_if_necessary,
    )

    found = mismatches(_get_pip_requirements_from_model_path(str(local)))
    if found:
        logger.warning(
            "the model's dependencies differ from this environment's:\n - %s\n"
            "(`mlflow.pyfunc.get_model_dependencies(model_uri)` lists them)",
            "\n - ".join(found),
        )
    _warn_potentially_incompatible_py_version_if_necessary(model_py_version=python_version)
    return found
