"""Shared helpers for the seed example models."""

from __future__ import annotations

import csv
import logging
import shutil
import tempfile
from collections.abc import Callable
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
    # Rows like the input that explanations compare with (stored with the version).
    background: np.ndarray | None = None
    # An explicit signature (e.g. one that declares params); None: inferred from the example.
    signature: Any = None


def artifact_dir(prefix: str) -> Path:
    """Create a fresh temporary directory for artifacts; the caller owns its lifetime."""
    path = Path(tempfile.mkdtemp(prefix=f"maas-{prefix}-"))
    logger.debug("writing %s artifacts to %s", prefix, path)
    return path


def register(client: Any, name: str, ex: TrainedExample) -> Any:
    """Register a trained example as a new version of ``name``; remove its temp files.

    Metrics become version tags (4 decimals). Returns the new ``VersionInfo``.
    """
    try:
        return client.register(
            name,
            ex.model,
            input_example=ex.input_example,
            signature=ex.signature,
            artifacts=ex.artifacts,
            background=ex.background,
            description=ex.description,
            tags={k: f"{v:.4f}" for k, v in ex.metrics.items()},
        )
    finally:
        # The registry holds a copy now; the training folders were ours to delete.
        for folder in {Path(p).parent for p in (ex.artifacts or {}).values()}:
            if folder.name.startswith("maas-"):
                shutil.rmtree(folder, ignore_errors=True)


def main(name: str, train: Callable[[], TrainedExample]) -> None:
    """Train one example and register it on the platform of the ``MAAS_*`` settings."""
    from maas_ray import MaaS

    logging.basicConfig(level=logging.INFO)
    v = register(MaaS(), name, train())
    print(f"registered {v.name} version {v.version} (sha256 {v.sha256})")


def stratified_split(target: np.ndarray, test_size: float, seed: int) -> tuple[Any, Any]:
    """Train and held-out row indices, stratified by ``target``."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(target))
    train_idx, test_idx = train_test_split(
        idx, test_size=test_size, random_state=seed, stratify=target
    )
    return train_idx, test_idx


def held_out_rows(
    x: np.ndarray, y: np.ndarray, test_idx: np.ndarray, labels: tuple[int, ...]
) -> list[list[float]]:
    """The first held-out row of each label, in that order, as plain Python floats."""
    rows = [next(int(i) for i in test_idx if y[i] == label) for label in labels]
    return [[float(v) for v in x[i]] for i in rows]


def fit_minibatch(
    forward: Callable[[Any], Any],
    loss_fn: Any,
    optimiser: Any,
    x: Any,
    y: Any,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> None:
    """Plain shuffled mini-batch training of a torch model (``forward`` gives what
    ``loss_fn`` compares with ``y``); the shuffle is seeded, so runs repeat."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            optimiser.zero_grad()
            loss = loss_fn(forward(x[batch]), y[batch])
            loss.backward()
            optimiser.step()
            total += loss.item() * len(batch)
        logger.debug("epoch %d loss %.4f", epoch, total / len(order))


def text_labels(path: Path) -> tuple[list[str], list[str]]:
    """The texts and labels of a ``text,label`` CSV (UTF-8) that an example ships."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], [r["label"] for r in rows]
