"""Does this Python environment satisfy what a model version was saved with?

MLflow's ``pyfunc.load_model`` asks the same, but maps every installed module to its
distribution first (``importlib.metadata.packages_distributions``, a walk over every
installed package's file list): 1.3 s of CPU in each replica that loads a model, on
every start and restart. The same answer comes from looking up only the packages the
model names, which takes milliseconds; the replica logs the same warning MLflow
would (and loads the model anyway, as MLflow does).
"""

from __future__ import annotations

import logging
import platform
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
    """Log a warning naming what the saved model's ``requirements.txt`` and Python
    version ask for that this environment lacks; return the mismatched packages."""
    path = local / "requirements.txt"
    lines = []
    if path.is_file():
        for raw in path.read_text(encoding="utf-8").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if line and not line.startswith(("#", "-")):
                lines.append(line)
    found = mismatches(lines)
    if found:
        logger.warning(
            "the model's dependencies differ from this environment's:\n - %s\n"
            "(`mlflow.pyfunc.get_model_dependencies(model_uri)` lists them)",
            "\n - ".join(found),
        )
    here = ".".join(platform.python_version_tuple()[:2])
    if python_version and ".".join(python_version.split(".")[:2]) != here:
        logger.warning(
            "the model was saved with Python %s; this replica runs Python %s",
            python_version,
            platform.python_version(),
        )
    return found
