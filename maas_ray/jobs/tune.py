"""Search a pipeline's hyperparameters with Ray Tune, register the best:
``python -m maas_ray.jobs.tune --config FILE.yaml``.

The same search as ``maas tune``; submitted as a Ray job::

    ray job submit --address http://127.0.0.1:8265 \\
        -- python -m maas_ray.jobs.tune --config "$PWD/examples/sentiment/tuning.yaml"

``--config``: a ``kind: MaasTuning`` YAML file (its ``data`` path relative to the
file). ``--spec``: the same document as JSON (what the management API submits).
The last line printed is the result as JSON; a failure exits 1 with one line that
says why, and leaves the registry unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from maas_ray.jobs.train import parse, run_job
from maas_ray.settings import Settings
from maas_ray.training_spec import TuningSpec


def main(argv: list[str] | None = None) -> int:
    spec, base = parse(argv, TuningSpec, __doc__)

    def work(settings: Settings, say: Callable[[str], None]) -> Any:
        from maas_ray.training.tune import tune

        return tune(spec, settings, base, say=say)  # type: ignore[arg-type]

    return run_job(work)


if __name__ == "__main__":
    sys.exit(main())
