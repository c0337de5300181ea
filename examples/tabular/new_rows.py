"""New breast-cancer rows for fine-tuning the ``tabular`` example.

Writes a CSV of scikit-learn's breast-cancer rows as a new clinic might send
them: every feature measured again with a little noise (2% of its spread,
seeded), under the dataset's own column names, with the diagnosis as a class
name in ``target``. ``maas finetune tabular --data FILE`` takes it as it is.

    .venv/bin/python -m examples.tabular.new_rows rows.csv [--rows N] [--seed S]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd


def new_rows(rows: int | None = None, seed: int = 1) -> pd.DataFrame:
    """The rows as a frame: 30 feature columns and ``target`` (malignant/benign)."""
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    rng = np.random.default_rng(seed)
    x = data.data + rng.normal(0.0, 0.02, data.data.shape) * data.data.std(axis=0)
    x = np.clip(x, 0.0, None)  # sizes and counts stay non-negative
    frame = pd.DataFrame(x, columns=[str(c) for c in data.feature_names])
    frame["target"] = [str(data.target_names[t]) for t in data.target]
    order = rng.permutation(len(frame))
    return frame.iloc[order[:rows] if rows else order].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="the CSV file to write")
    parser.add_argument("--rows", type=int, default=None, help="how many (default: all 569)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    frame = new_rows(args.rows, args.seed)
    frame.to_csv(args.out, index=False)
    print(f"wrote {len(frame)} rows to {args.out}")


if __name__ == "__main__":
    main()
