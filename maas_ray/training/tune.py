"""A hyperparameter search with Ray Tune, then the best registered (``maas tune``).

The training of ``run.py`` with one step more: after the split, Ray Tune runs a
trial per point of the declared space (each the same fit-and-score as a training,
a Ray actor declaring ``num_cpus``; at most as many at once as the CPUs serving
leaves free allow), logs each trial as a child MLflow run of the training's run,
and picks the best on the held-out ``metric``. That configuration is then fit,
logged and registered as a training's is (tags ``maas.run_id``, ``maas.data_sha256``,
and ``maas.tune_trials``), promoted only with ``promote_if_better``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pandas as pd

from maas_ray.errors import BadRequest
from maas_ray.settings import Settings
from maas_ray.spec import LOWER_IS_BETTER
from maas_ray.training.fit import fit_and_score
from maas_ray.training.result import TrainResult
from maas_ray.training.run import Say, train
from maas_ray.training_spec import CLASSIFICATION_METRICS, REGRESSION_METRICS, TuningSpec

logger = logging.getLogger(__name__)
TRIALS_TAG = "maas.tune_trials"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own: the UI nests the trials


def checked_space(spec: TuningSpec, estimator: Any) -> None:
    """Every searched name is a parameter of the pipeline (a one-line 400 if not)."""
    try:
        known = set(estimator.get_params(deep=True))
    except Exception as exc:  # not a scikit-learn estimator
        raise BadRequest("maas tune searches scikit-learn estimators' parameters") from exc
    unknown = [p for p in spec.search if p not in known]
    if unknown:
        some = ", ".join(sorted(k for k in known if "__" in k)[:8] or sorted(known)[:8])
        raise BadRequest(f"search: the pipeline has no parameter {unknown[0]} (it has {some}, ...)")


def space(spec: TuningSpec) -> dict[str, Any]:
    """The declared space as Ray Tune's (lists of values become grids)."""
    from ray import tune

    out: dict[str, Any] = {}
    for param, values in spec.search.items():
        if isinstance(values, list):
            out[param] = tune.grid_search([_value(v) for v in values])
        else:
            kind, (low, high) = next(iter(values.items()))
            if kind == "randint":
                out[param] = tune.randint(int(low), int(high) + 1)
            else:
                out[param] = getattr(tune, kind)(low, high)
    return out


def _value(value: Any) -> Any:
    """YAML lists as the tuples scikit-learn wants (``ngram_range: [1, 3]``)."""
    return tuple(value) if isinstance(value, list) else value


def trial(
    config: dict[str, Any],
    *,
    estimator: Any,
    X: pd.DataFrame,
    y: pd.Series,
    train_rows: Any,
    test_rows: Any,
    task: str,
) -> None:
    """One trial (a Ray Tune function trainable): fit and score, report the scores.
    The search logs each trial's child run afterwards, one at a time (no trials
    writing to the tracking server at once)."""
    from ray import tune
    from sklearn.base import clone

    chosen = clone(estimator).set_params(**config)
    fitted = fit_and_score(chosen, X, y, train_rows, test_rows, task)
    tune.report({**fitted.metrics, "fit_seconds": fitted.fit_s})


def log_trials(settings: Settings, run_id: str, grid: Any) -> int:
    """Each trial as a child run of the search's run (params, scores, or its error);
    returns how many failed."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(settings.mlflow_uri)
    experiment = client.get_run(run_id).info.experiment_id
    failed = 0
    for i in range(len(grid)):
        result = grid[i]
        tags = {PARENT_RUN_TAG: run_id}
        child_id = client.create_run(experiment, tags=tags, run_name=f"trial-{i + 1}").info.run_id
        for key, value in (result.config or {}).items():
            client.log_param(child_id, key, str(value)[:500])
        scores = result.metrics or {}
        for key in (*CLASSIFICATION_METRICS, *REGRESSION_METRICS, "fit_seconds"):
            if isinstance(scores.get(key), int | float):
                client.log_metric(child_id, key, float(scores[key]))
        if result.error is not None:
            failed += 1
            client.set_tag(child_id, "maas.error", str(result.error)[:4000])
        client.set_terminated(child_id, "FAILED" if result.error is not None else "FINISHED")
    return failed


def concurrency(spec: TuningSpec) -> int:
    """Trials at once: what the free CPUs (beside serving) hold, at least one."""
    import ray

    free = float(ray.available_resources().get("CPU", 0.0))
    if free + 1e-9 < spec.num_cpus:
        raise BadRequest(
            f"a trial needs {spec.num_cpus:g} CPUs; {free:g} are free beside serving: "
            "lower num_cpus or undeploy a model"
        )
    return max(1, math.floor(free / spec.num_cpus + 1e-9))


def tune(
    spec: TuningSpec, settings: Settings, base: Path | None = None, say: Say = logger.info
) -> TrainResult:
    """Search, then fit, log and register the best (on this process's cluster)."""
    found: dict[str, Any] = {}

    def search(estimator: Any, X: Any, y: Any, train_rows: Any, test_rows: Any, task: str,
               run_id: str, stage: Say) -> Any:  # fmt: skip
        checked_space(spec, estimator)
        best, trials = _search(spec, settings, estimator, X, y, train_rows, test_rows, task,
                               run_id, stage)  # fmt: skip
        found.update(best=best, trials=trials)
        from mlflow.tracking import MlflowClient

        client = MlflowClient(settings.mlflow_uri)
        client.set_tag(run_id, TRIALS_TAG, str(trials))
        for key, value in best.items():
            client.log_param(run_id, f"best.{key}"[:250], str(value)[:500])
        return estimator.set_params(**best)

    result = train(spec, settings, base, say, choose=search)
    result.figures = {"trials": float(found.get("trials", 0))}
    return result


def _search(
    spec: TuningSpec,
    settings: Settings,
    estimator: Any,
    X: Any,
    y: Any,
    train_rows: Any,
    test_rows: Any,
    task: str,
    run_id: str,
    stage: Say,
) -> tuple[dict[str, Any], int]:
    from ray import tune as ray_tune

    at_once = concurrency(spec)
    mode = "min" if spec.metric in LOWER_IS_BETTER else "max"
    done: list[int] = [0]
    total = spec.trials
    for values in spec.search.values():
        total *= len(values) if isinstance(values, list) else 1

    class Progress(ray_tune.Callback):
        def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **_: Any) -> None:
            done[0] += 1
            shown = ", ".join(f"{k}={v}" for k, v in trial.config.items())
            stage(f"trial {done[0]}/{total}: {shown} -> failed")

        def on_trial_complete(
            self, iteration: int, trials: list[Any], trial: Any, **_: Any
        ) -> None:
            done[0] += 1
            score = (trial.last_result or {}).get(spec.metric)
            shown = ", ".join(f"{k}={v}" for k, v in trial.config.items())
            scored = f"{spec.metric} {score:.4f}" if isinstance(score, float) else "no score"
            stage(f"trial {done[0]}/{total}: {shown} -> {scored}")

    trainable = ray_tune.with_resources(
        ray_tune.with_parameters(
            trial, estimator=estimator, X=X, y=y, train_rows=train_rows, test_rows=test_rows,
            task=task,
        ),
        {"cpu": spec.num_cpus},
    )  # fmt: skip
    tuner = ray_tune.Tuner(
        trainable,
        param_space=space(spec),
        tune_config=ray_tune.TuneConfig(
            num_samples=spec.trials, max_concurrent_trials=at_once, metric=spec.metric, mode=mode
        ),
        run_config=ray_tune.RunConfig(
            name=f"tune-{spec.name}-{run_id}",
            storage_path=str(settings.home / "training"),
            callbacks=[Progress()],
            # A failed trial gets one more go (a worker that died; its own error fails again).
            failure_config=ray_tune.FailureConfig(max_failures=1),
            verbose=0,
        ),
    )
    plural = "s" if at_once > 1 else ""
    stage(f"searching: {at_once} trial{plural} at once, {spec.num_cpus:g} CPU each (Ray Tune)")
    grid = tuner.fit()
    failed = log_trials(settings, run_id, grid)
    if failed == len(grid):
        raise BadRequest(f"every trial failed; the first: {grid[0].error}"[:500])
    if failed:
        stage(f"{failed} of {len(grid)} trials failed (their child runs say why)")
    best = grid.get_best_result(metric=spec.metric, mode=mode)
    config, metrics = dict(best.config or {}), best.metrics or {}
    stage(f"best of {len(grid)} trials: {spec.metric} {metrics.get(spec.metric)} with {config}")
    return config, len(grid)
