"""Train a pipeline and register it: ``python -m maas_ray.jobs.train --config FILE.yaml``.

The same training as ``MaaS().train`` and ``maas train``; submitted as a Ray job::

    ray job submit --address http://127.0.0.1:8265 --working-dir . \\
        -- python -m maas_ray.jobs.train --config training.yaml

``--config``: a ``kind: MaasTraining`` YAML file (its ``data`` path relative to the
file). ``--spec``: the same document as JSON (what the management API submits).
The last line printed is the result as JSON; a failure exits 1 with one line that
says why, and leaves the registry unchanged.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from maas_ray.errors import MaasError, first_error
from maas_ray.jobs.submit import RESULT_PREFIX, STAGE_PREFIX, WARM_SWITCH
from maas_ray.settings import Settings
from maas_ray.training_spec import TrainingSpec


def parse(
    argv: list[str] | None = None, model: type[TrainingSpec] = TrainingSpec, doc: str | None = None
) -> tuple[TrainingSpec, Path | None]:
    """The training spec from the command line, and the folder its data is relative to
    (``model``: ``TuningSpec`` for ``maas_ray.jobs.tune``)."""
    kind = model.model_fields["kind"].default
    job = "tune" if kind == "MaasTuning" else "train"
    parser = argparse.ArgumentParser(
        prog=f"python -m maas_ray.jobs.{job}", description=doc or __doc__
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--config", type=Path, help=f"a kind: {kind} YAML file")
    source.add_argument("--spec", help="the same document as JSON")
    parser.add_argument("--promote-if-better", metavar="METRIC", default=None)
    args = parser.parse_args(argv)
    if args.config is not None:
        try:
            raw = yaml.safe_load(args.config.read_text())
        except (OSError, yaml.YAMLError) as exc:
            parser.exit(1, f"error: cannot read {args.config}: {exc}\n")
        base = args.config.resolve().parent
    else:
        raw, base = json.loads(args.spec), None
    if args.promote_if_better:
        raw = {**raw, "promote_if_better": args.promote_if_better}
    try:
        return model.model_validate(raw), base
    except ValidationError as exc:
        where, text = first_error(exc, "spec")
        parser.exit(1, f"error: {where}: {text}\n")


def main(argv: list[str] | None = None) -> int:
    spec, base = parse(argv)

    def work(settings: Settings, say: Callable[[str], None]) -> Any:
        from maas_ray.training.run import train

        return train(spec, settings, base, say=say)

    return run_job(work)


def run_job(work: Callable[[Settings, Callable[[str], None]], Any]) -> int:
    """Run a training job's work on the job's cluster: its stages as ``stage:`` lines,
    its result as the last line, or one ``error:`` line (and exit 1)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    import ray

    # The job's cluster (RAY_ADDRESS from Ray's job API). Its workers skip the serving
    # warm-up imports (serving/warm.py); the platform's submissions already say so,
    # a `ray job submit` typed by hand does not (and Ray refuses the same key twice).
    submitted_off = os.environ.get(WARM_SWITCH) == "0"
    ray.init(
        log_to_driver=False,
        runtime_env=None if submitted_off else {"env_vars": {WARM_SWITCH: "0"}},
    )
    try:
        result = work(Settings(), lambda s: _out(f"{STAGE_PREFIX}{s}"))
    except MaasError as exc:
        _out(f"error: {exc.message}")
        return 1
    except Exception as exc:  # the pipeline's own failure (e.g. inside the fit task)
        logging.exception("training failed")  # the whole trace in the job's log
        cause = getattr(exc, "cause", None) or exc  # a Ray task's error carries its cause
        text = getattr(cause, "message", None) or f"{type(cause).__name__}: {cause}"
        _out(f"error: {str(text).strip().splitlines()[0] if str(text).strip() else text}")
        return 1
    _out(RESULT_PREFIX + result.model_dump_json())
    return 0


def _out(line: str) -> None:
    """One line of the job's log, at once (the job API reads it while the job runs)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
