"""Shared helpers for the seed example models."""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)


@dataclass
class TrainedExample:
    """Everything needed to register one trained example model.

    ``model`` is an sklearn estimator for flavours that MLflow can save directly, or the
    path (str) of a "models from code" ``model.py`` file for the torch examples, in which
    case ``artifacts`` maps artifact names to files (weights, scaler) in a temporary dir.
    """

    model: Any
    input_example: np.ndarray
    artifacts: dict[str, str] | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    description: str = ""


def artifact_dir(prefix: str) -> Path:
    """Create a fresh temporary directory for artifacts; the caller owns its lifetime."""
    path = Path(tempfile.mkdtemp(prefix=f"maas-{prefix}-"))
    logger.debug("writing %s artifacts to %s", prefix, path)
    return path
