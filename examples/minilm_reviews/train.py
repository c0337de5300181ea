"""Example ``minilm-reviews``: a sentiment classifier on minilm embeddings, then fine-tuned.

Trains the head of ``model.py`` on the embeddings the local minilm encoder gives
the first half of ``examples/sentiment/data.csv`` (English and Chinese reviews) and
registers it; ``--rows`` writes the other half as new rows to fine-tune it on::

    .venv/bin/python -m examples.minilm_reviews.train                 # registers `minilm-reviews`
    .venv/bin/python -m examples.minilm_reviews.train --rows new.csv   # the rows it has not seen
    .venv/bin/maas promote minilm-reviews 1
    .venv/bin/maas finetune minilm-reviews --data new.csv --label label --epochs 5 --lr 0.003
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from examples._common import TrainedExample, artifact_dir, fit_minibatch, main
from examples.minilm_reviews.model import SentimentHead, embed, encoder

NAME = "minilm-reviews"
MODEL_CODE = str(Path(__file__).with_name("model.py"))
DATA = Path(__file__).resolve().parents[1] / "sentiment" / "data.csv"
SEED = 0
EPOCHS = 30

logger = logging.getLogger(__name__)


def halves() -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reviews split in two, seeded: the first to train on, the second held back."""
    frame = pd.read_csv(DATA).sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    middle = len(frame) // 2
    return frame.iloc[:middle].reset_index(drop=True), frame.iloc[middle:].reset_index(drop=True)


def train() -> TrainedExample:
    torch.manual_seed(SEED)
    first, _ = halves()
    classes = sorted(first["label"].unique().tolist())
    x = torch.from_numpy(embed(encoder("cpu"), first["text"].to_numpy()))
    y = torch.as_tensor([classes.index(v) for v in first["label"]], dtype=torch.int64)
    head = SentimentHead(len(classes))
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-3)
    fit_minibatch(head, nn.CrossEntropyLoss(), optimiser, x, y, epochs=EPOCHS, batch_size=32,
                  seed=SEED)  # fmt: skip
    head.eval()
    with torch.inference_mode():
        accuracy = float((head(x).argmax(dim=1) == y).float().mean())
    out = artifact_dir(NAME)
    torch.save(head.state_dict(), out / "weights.pt")
    (out / "labels.json").write_text(json.dumps({"classes": classes}), encoding="utf-8")
    return TrainedExample(
        model=MODEL_CODE,
        input_example=np.asarray(["this book is great", "这本书很无聊"], dtype=object),
        artifacts={"weights": str(out / "weights.pt"), "labels": str(out / "labels.json")},
        metrics={"train_accuracy": accuracy, "n_train": float(len(first))},
        description="Review sentiment: local all-MiniLM-L6-v2 embeddings, then a PyTorch "
        "head 384-64-2. Input: texts. Output: 'positive' or 'negative' per text.",
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=Path, help="write the held-back half here instead")
    args = parser.parse_args()
    if args.rows:
        halves()[1].to_csv(args.rows, index=False)
        print(f"wrote {len(halves()[1])} rows to {args.rows}")
    else:
        main(NAME, train)
