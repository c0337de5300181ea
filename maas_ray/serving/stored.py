"""What a version keeps beside its model, read when a replica loads it: the input example
it was registered with, the same example as the body of a predict request (MLflow's
``serving_input_example.json``), and the background rows its explainer compares with.

Each is None where the version has none or it cannot be read: none of them may fail a
load (the health check, the warm-up and the explainer's baseline only do less).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlflow.pyfunc import PyFuncModel

from maas_ray.registry.background import load_background

logger = logging.getLogger(__name__)


def input_example(model: PyFuncModel, local: Path) -> Any:
    """The version's input example as its model takes it."""
    try:
        return model.metadata.load_input_example(str(local))
    except Exception:  # noqa: BLE001 - an unreadable example only turns the check off
        logger.warning("cannot read the input example in %s", local, exc_info=True)
        return None


def serving_input(model: PyFuncModel, local: Path) -> bytes | None:
    """The input example as a predict request's JSON body."""
    try:
        found = model.metadata.get_serving_input(str(local))
    except Exception:  # noqa: BLE001 - an unreadable example only skips the warm-up
        logger.warning("cannot read the serving input example in %s", local, exc_info=True)
        return None
    return found.encode() if found else None


def background_rows(local: Path) -> Any:
    """The background rows stored with the version (register(background=...))."""
    try:
        return load_background(local)
    except Exception:  # noqa: BLE001 - unreadable rows only fall back to the example
        logger.warning("cannot read the background sample in %s", local, exc_info=True)
        return None
