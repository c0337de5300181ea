"""One training, start to end, on the cluster (what ``maas_ray.jobs.train`` runs).

Read and check the data, build the pipeline, split, fit and score as a Ray task
(declaring its CPUs), log the run to MLflow (params, held-out metrics, the model
with its signature and input example), register the version through the
management API (digest recorded, audited) with ``maas.run_id`` and
``maas.data_sha256``, and, when asked, promote it only if it beats the production
version on the same held-out rows. Each stage is the run's ``maas.stage`` tag.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from maas_ray.errors import BadRequest, MaasError
from maas_ray.settings import Settings
from maas_ray.training import data as datamod
from maas_ray.training.estimators import build, task_of
from maas_ray.training.evaluate import better, positive_scores, scores
from maas_ray.training.fit import Fitted, fit_and_score, seeded, split_rows
from maas_ray.training.result import (
    DATA_TAG,
    EXPERIMENT,
    PROMOTED_TAG,
    RUN_ID_TAG,
    STAGE_TAG,
    TASK_TAG,
    VERSION_TAG,
    TrainResult,
)
from maas_ray.training_spec import FinetuneSpec, TrainingSpec
from maas_ray.wire import PRODUCTION

logger = logging.getLogger(__name__)
Say = Callable[[str], None]


def load(
    spec: TrainingSpec | FinetuneSpec, base: Path | None = None, tracking_uri: str | None = None
) -> tuple[pd.DataFrame, str]:
    """The spec's data as a frame, and its SHA-256 (checked against the staged one).

    A ``runs:/`` URI is read from ``tracking_uri`` (None: MLflow's current one, which a
    job sets first; the management application must name the platform's, or a
    freshly started replica looks in MLflow's local default and finds no such run)."""
    source = spec.data
    if "://" in source or source.startswith("runs:/"):
        with tempfile.TemporaryDirectory(prefix="maas-train-") as tmp:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source, dst_path=tmp, tracking_uri=tracking_uri
                )
            )
            frame, raw = datamod.read_file(local)
    else:
        path = Path(source).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        frame, raw = datamod.read_file(path)
    digest = datamod.sha256(raw)
    if spec.data_sha256 is not None and digest != spec.data_sha256:
        raise BadRequest(f"the data read has SHA-256 {digest}, not the {spec.data_sha256} staged")
    return frame, digest


def pipeline_of(spec: TrainingSpec) -> Any:
    """The unfitted estimator: a staged pickle, a factory, or estimator steps."""
    if isinstance(spec.pipeline, str) and spec.pipeline.startswith("runs:/"):
        import cloudpickle

        with tempfile.TemporaryDirectory(prefix="maas-train-") as tmp:
            local = mlflow.artifacts.download_artifacts(artifact_uri=spec.pipeline, dst_path=tmp)
            return build(cloudpickle.loads(Path(local).read_bytes()))
    return build(spec.pipeline)


# Picks the estimator to fit from the pipeline, the rows and the split (tune.py's search).
Choose = Callable[..., Any]


def train(
    spec: TrainingSpec,
    settings: Settings,
    base: Path | None = None,
    say: Say = logger.info,
    choose: Choose | None = None,
) -> TrainResult:
    """Run one training on the cluster this process is attached to (``ray.init``).

    ``choose(estimator, X, y, train_rows, test_rows, task, run_id, stage)``, when
    given, returns the estimator to fit instead (a hyperparameter search's best)."""
    import ray

    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    client = MlflowClient(settings.mlflow_uri)
    run_id = spec.run_id or new_run(client, spec.name)
    stage = stages(client, run_id, say)
    try:
        stage("reading the data")
        frame, digest = load(spec, base)
        X, y = datamod.split_label(frame, spec.label)
        estimator = seeded(pipeline_of(spec), spec.seed)
        task = task_of(estimator, y)
        train_rows, test_rows = split_rows(y, task, spec.test_size, spec.seed)
        if choose is not None:
            estimator = choose(estimator, X, y, train_rows, test_rows, task, run_id, stage)
        stage(f"fitting on {len(train_rows)} rows ({spec.num_cpus:g} CPU, a Ray task)")
        fit = ray.remote(num_cpus=spec.num_cpus, max_retries=0)(fit_and_score)
        fitted: Fitted = ray.get(
            fit.remote(estimator, X, y, train_rows, test_rows, task, spec.array_input)
        )
        stage(f"logging the run ({', '.join(f'{k} {v:.4f}' for k, v in fitted.metrics.items())})")
        uri = _log(spec, fitted, X, train_rows, task, digest, run_id, len(test_rows))
        stage("registering")
        version = register(settings, spec, uri, run_id, digest)
        result = TrainResult(
            model=spec.name,
            version=version,
            run_id=run_id,
            task=task,  # type: ignore[arg-type]
            metrics=fitted.metrics,
            data_sha256=digest,
            n_train=len(train_rows),
            n_test=len(test_rows),
        )
        if spec.promote_if_better:
            stage(f"comparing with @{PRODUCTION} on the held-out rows")
            held_out = (X, y, test_rows)
            promote_if_better(
                settings, spec.name, spec.promote_if_better or "", result,
                lambda version: _score_version(
                    settings, spec.name, version, *held_out, task, spec.array_input
                ),
            )  # fmt: skip
        client.set_tag(run_id, VERSION_TAG, version)
        client.set_tag(run_id, PROMOTED_TAG, str(result.promoted).lower())
        stage("done")
        return result
    except BaseException as exc:
        client.set_tag(run_id, STAGE_TAG, f"failed: {exc}"[:4000])
        client.set_terminated(run_id, "FAILED")
        raise


def new_run(client: MlflowClient, name: str, verb: str = "train") -> str:
    """A new run in the training experiment, named after the model."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    exp_id = experiment.experiment_id if experiment else client.create_experiment(EXPERIMENT)
    return str(client.create_run(exp_id, run_name=f"{verb}-{name}").info.run_id)


def stages(client: MlflowClient, run_id: str, say: Say) -> Say:
    def stage(text: str) -> None:
        say(text)
        client.set_tag(run_id, STAGE_TAG, text)

    return stage


def _log(
    spec: TrainingSpec,
    fitted: Fitted,
    X: pd.DataFrame,
    train_rows: Any,
    task: str,
    digest: str,
    run_id: str,
    n_test: int,
) -> str:
    from maas_ray.registry._logging import log_model

    example = datamod.take(datamod.model_input(X, spec.array_input), train_rows[:2])
    with mlflow.start_run(run_id=run_id):
        mlflow.log_params(_params(spec, fitted.estimator, len(train_rows), n_test))
        mlflow.log_metrics({**fitted.metrics, "fit_seconds": fitted.fit_s})
        mlflow.set_tags({DATA_TAG: digest, TASK_TAG: task})
        info = log_model(fitted.estimator, registered_model_name=None, input_example=example)
    return str(info.model_uri)


def _params(spec: TrainingSpec, estimator: Any, n_train: int, n_test: int) -> dict[str, Any]:
    params: dict[str, Any] = {
        "label": spec.label,
        "test_size": spec.test_size,
        "seed": spec.seed,
        "n_train": n_train,
        "n_test": n_test,
        "estimator": type(estimator).__name__,
    }
    steps = getattr(estimator, "steps", None)
    if steps:
        params["steps"] = " > ".join(type(s).__name__ for _, s in steps)[:500]
    try:
        for key, value in estimator.get_params(deep=True).items():
            if isinstance(value, str | int | float | bool | type(None) | tuple):
                params[key[:250]] = str(value)[:500]
    except Exception:  # not a scikit-learn estimator: its class name is enough
        pass
    return dict(list(params.items())[:100])


def register(
    settings: Settings,
    spec: TrainingSpec | FinetuneSpec,
    uri: str,
    run_id: str,
    digest: str,
    lineage: dict[str, str] | None = None,
) -> str:
    """Register the logged model through the management API (digest, audit); its
    version, tagged with the run, the data's SHA-256 and any ``lineage``."""
    from maas_ray.transport import Transport

    tags = {**spec.tags, RUN_ID_TAG: run_id, DATA_TAG: digest, **(lineage or {})}
    body = {"model_uri": uri, "description": spec.description, "tags": tags}
    with Transport(settings) as http:
        answer = http.admin("register", body, name=spec.name)
    return str(answer["version"])


def promote_if_better(
    settings: Settings,
    name: str,
    metric: str,
    result: TrainResult,
    score: Callable[[str], dict[str, float]],
) -> None:
    """Score @production on the held-out rows (``score(version)``); promote the new
    version only if it wins on ``metric``. ``result`` says what was decided."""
    from maas_ray.registry import Registry
    from maas_ray.transport import Transport

    new = result.metrics.get(metric)
    try:
        current = Registry(settings.mlflow_uri).resolve(name, None, PRODUCTION)
    except MaasError:
        current = None
    if current is not None:
        try:
            old = score(current.version)
        except Exception as exc:  # the old version cannot take these rows: say so, keep it
            result.promotion = (
                f"kept v{current.version}: it could not be scored on these rows ({exc})"[:500]
            )
            return
        result.production = {"version": current.version, "metrics": old}
        if metric not in old:
            result.promotion = f"kept v{current.version}: it gives no {metric} on these rows"
            return
        if not better(metric, new, old[metric]):
            result.promotion = (
                f"kept v{current.version}: {metric} {new:.4f} does not beat {old[metric]:.4f}"
            )
            return
    with Transport(settings) as http:
        http.admin("promote", {"version": result.version, "alias": PRODUCTION}, name=name)
    result.promoted = True
    result.promotion = (
        f"promoted: {metric} {new:.4f} beats v{current.version}'s "
        f"{result.production['metrics'].get(metric):.4f}"  # type: ignore[index]
        if current is not None
        else f"promoted: no version was @{PRODUCTION}"
    )


def _score_version(
    settings: Settings,
    name: str,
    version: str,
    X: pd.DataFrame,
    y: pd.Series,
    rows: Any,
    task: str,
    array: bool = False,
) -> dict[str, float]:
    """A registered version's scores on the held-out rows (class scores too, for
    ``roc_auc``, where it is a scikit-learn model)."""
    import mlflow.pyfunc

    from maas_ray.registry import Registry

    registry = Registry(settings.mlflow_uri)

    held_out = datamod.take(datamod.model_input(X, array), rows)
    labels = y.to_numpy()[rows]
    with tempfile.TemporaryDirectory(prefix="maas-compare-") as tmp:
        local = registry.download_verified(name, version, tmp)
        model = mlflow.pyfunc.load_model(str(local))
        score = None
        if task == "classification" and "sklearn" in model.metadata.flavors:
            import mlflow.sklearn

            score = positive_scores(mlflow.sklearn.load_model(str(local)), held_out)
        predicted = model.predict(held_out)
    if isinstance(predicted, pd.DataFrame):
        predicted = predicted.iloc[:, 0]
    return scores(task, labels, predicted, score)
