"""Fine-tuning ``tabular`` with Ray Train: 1 worker (the baseline) vs 2 workers, and
1 GPU worker where the machine has a GPU.

Starts its own platform (temporary MAAS_HOME, ports apart from the defaults and the
tests), registers the ``tabular`` example, writes new breast-cancer rows
(``examples.tabular.new_rows``), and runs the same fine-tune with each shape through
the SDK (a Ray job, as a user's). For each: the wall time end to end (check, stage,
job, workers started, epochs, child scored and registered), the Ray Train run's own
time, and the worker group's samples/s while it trained (the mean over epochs, as
rank 0 logs them); then the ratios against 1 worker. Stops the platform by process
id at the end.

    .venv/bin/python -m benchmarks.finetune [--epochs 5] [--rows 569]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from benchmarks._common import bench_settings, running
from examples._common import register
from examples.tabular.new_rows import new_rows
from examples.tabular.train import train as train_tabular
from maas_ray import MaaS


def shapes() -> list[dict[str, Any]]:
    """1 CPU worker (the baseline), 2 CPU workers, and 1 GPU worker with a GPU."""
    out: list[dict[str, Any]] = [{"workers": 1}, {"workers": 2}]
    try:
        import torch

        if torch.cuda.is_available():
            out.append({"workers": 1, "num_gpus_per_worker": 1, "cpus_per_worker": 1})
    except ImportError:
        pass
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--rows", type=int, default=None, help="default: all 569")
    args = parser.parse_args()
    console = Console()
    settings = bench_settings("finetune", 400)
    rows: list[list[str]] = []
    base: dict[str, float] = {}
    with running(settings, console) as bar, tempfile.TemporaryDirectory() as tmp:
        client = MaaS(settings)
        step = bar.add_task("registering tabular", total=None)
        parent = register(client, "tabular", train_tabular())
        client.promote("tabular", parent.version)
        data = Path(tmp) / "rows.csv"
        new_rows(args.rows).to_csv(data, index=False)
        for shape in shapes():
            label = _label(shape)
            bar.update(step, description=f"fine-tuning: {label}")
            started = time.perf_counter()
            result = client.finetune(
                "tabular", data, from_version=parent.version, epochs=args.epochs, **shape
            )
            wall = time.perf_counter() - started
            rate = result.figures.get("train_samples_per_s", 0.0)
            train_s = result.figures.get("train_seconds", 0.0)
            if not base:
                base = {"rate": rate, "wall": wall}
            rows.append(
                [
                    label,
                    f"{wall:.1f}",
                    f"{train_s:.1f}",
                    f"{rate:,.0f}",
                    f"{rate / base['rate']:.2f}x" if base["rate"] else "-",
                    f"{base['wall'] / wall:.2f}x",
                    f"{result.metrics.get('accuracy', float('nan')):.3f}",
                ]
            )
        client.close()
    table = Table(
        title=f"tabular fine-tune, {args.epochs} epochs, {args.rows or 569} rows (80% trained on)"
    )
    for column in (
        "workers",
        "wall s",
        "Ray Train s",
        "samples/s",
        "samples/s vs 1",
        "speed vs 1 (wall)",
        "held-out accuracy",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


def _label(shape: dict[str, Any]) -> str:
    gpus = shape.get("num_gpus_per_worker", 0)
    return f"{shape['workers']} x {'GPU (NCCL)' if gpus else 'CPU (gloo)'}"


if __name__ == "__main__":
    main()
