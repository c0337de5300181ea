"""Fine-tune a registered PyTorch version with Ray Train and register the child:
``python -m maas_ray.jobs.finetune NAME --data FILE [--workers W] [--epochs E] ...``.

The same fine-tune as ``MaaS().finetune`` and ``maas finetune``; submitted as a Ray job::

    ray job submit --address http://127.0.0.1:8265 \\
        -- python -m maas_ray.jobs.finetune tabular --data "$PWD/rows.csv" --workers 2 --epochs 1

``--spec``: the whole ``FinetuneSpec`` as JSON instead (what the management API
submits). The last line printed is the result as JSON; a failure exits 1 with one
line that says why, and leaves the registry unchanged.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from maas_ray.errors import first_error
from maas_ray.jobs.train import run_job
from maas_ray.training_spec import FinetuneSpec


def parse(argv: list[str] | None = None) -> FinetuneSpec:
    """The fine-tune spec from the command line."""
    parser = argparse.ArgumentParser(prog="python -m maas_ray.jobs.finetune", description=__doc__)
    parser.add_argument("name", nargs="?", help="the registered model")
    parser.add_argument("--spec", help="the whole FinetuneSpec as JSON")
    parser.add_argument("--from-version", default=None, help="parent (default: @production)")
    parser.add_argument("--data", help="CSV or Parquet with the label column")
    parser.add_argument("--label", default=None)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--num-gpus-per-worker", type=float, default=None)
    parser.add_argument("--cpus-per-worker", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--promote-if-better", metavar="METRIC", default=None)
    args = parser.parse_args(argv)
    raw: dict[str, Any] = json.loads(args.spec) if args.spec else {}
    flags = {k: v for k, v in vars(args).items() if k != "spec" and v is not None}
    if not raw and ("name" not in flags or "data" not in flags):
        parser.error("give NAME and --data, or --spec")
    try:
        return FinetuneSpec.model_validate({**raw, **flags})
    except ValidationError as exc:
        where, text = first_error(exc, "spec")
        parser.exit(1, f"error: {where}: {text}\n")


def main(argv: list[str] | None = None) -> int:
    spec = parse(argv)

    def work(settings: Any, say: Any) -> Any:
        from maas_ray.training.finetune import finetune

        return finetune(spec, settings, say=say)

    return run_job(work)


if __name__ == "__main__":
    sys.exit(main())
