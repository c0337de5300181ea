"""One fine-tune, start to end, on the cluster (what ``maas_ray.jobs.finetune`` runs).

Read the rows (checked against the staged SHA-256), open the parent version
(``@production`` unless named; digest checked; PyTorch only), split them as
``maas train`` does (stratified for a classification loss only: a seq2seq model's
labels are sentences), score the parent on the held-out rows (a seq2seq model: the
BLEU of its answers), then train further with Ray Train V2: a ``TorchTrainer`` of
``workers`` DDP workers reading the training rows through Ray Data, a checkpoint
every epoch under ``MAAS_HOME/training``, ``FailureConfig(max_failures)``, the
epochs' metrics in the training's MLflow run (rank 0). The child is scored on the
same held-out rows, logged in the same run, and registered with
``maas.parent_version``, ``maas.run_id`` and ``maas.data_sha256``; with
``promote_if_better`` it is promoted only if it beats ``@production`` there.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from maas_ray.errors import BadRequest, MaasError, ModelNotFound
from maas_ray.settings import Settings
from maas_ray.training import data as datamod
from maas_ray.training.evaluate import scores
from maas_ray.training.fit import split_rows
from maas_ray.training.result import (
    DATA_TAG,
    PARENT_TAG,
    PROMOTED_TAG,
    STAGE_TAG,
    TASK_TAG,
    VERSION_TAG,
    TrainResult,
)
from maas_ray.training.run import Say, load, new_run, promote_if_better, register, stages
from maas_ray.training.torch_model import Parent, inspect, open_parent, rows_of, save_child
from maas_ray.training_spec import FinetuneSpec
from maas_ray.wire import PRODUCTION

logger = logging.getLogger(__name__)

POLL_ENV = "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"  # ray/train/v2/_internal/constants.py
POLL_S = "0.25"
_PROGRESS_POLL_S = 1.0


def parent_version(settings: Settings, spec: FinetuneSpec) -> str:
    """The version to start from: ``from_version``, or the one ``@production`` names."""
    from maas_ray.registry import Registry

    registry = Registry(settings.mlflow_uri)
    try:
        return registry.resolve(spec.name, spec.from_version, PRODUCTION).version
    except ModelNotFound as exc:
        if spec.from_version is None and "@" in exc.message:
            raise ModelNotFound(spec.name, f"@{PRODUCTION}") from exc
        raise


def check(settings: Settings, spec: FinetuneSpec, frame: pd.DataFrame, full: bool = True) -> str:
    """Everything that can be checked before any cluster work: the parent exists and
    is PyTorch, the label is there, the columns fit its signature, the labels fit its
    loss, the rows split. ``full=False`` reads only the ``MLmodel`` file (no torch:
    what the management API does); the labels and the stratified split are then
    checked by the job. Returns the parent's version."""
    import mlflow.artifacts

    from maas_ray.registry import Registry

    version = parent_version(settings, spec)
    where = f"version {version} of '{spec.name}'"
    X, y = datamod.split_label(frame, spec.label)
    if full:
        with tempfile.TemporaryDirectory(prefix="maas-inspect-") as tmp:
            parent = open_parent(settings, spec.name, version, Path(tmp))
            parent.inputs(rows_of(parent.layout, X, where)[:8])  # texts a packaging embeds
            parent.targets(y.to_numpy())
            split_rows(y, parent.task, spec.test_size, spec.seed)
        return version
    source = Registry(settings.mlflow_uri).client.get_model_version_download_uri(spec.name, version)
    with tempfile.TemporaryDirectory(prefix="maas-inspect-") as tmp:
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=tmp,
            tracking_uri=settings.mlflow_uri,
        )  # fmt: skip
        layout = inspect(Path(mlmodel), spec.name, version)
    rows_of(layout, X, where)
    split_rows(y, "regression", spec.test_size, spec.seed)  # the row counts
    return version


def finetune(spec: FinetuneSpec, settings: Settings, say: Say = logger.info) -> TrainResult:
    """Run one fine-tune on the cluster this process is attached to (``ray.init``)."""
    mlflow.set_tracking_uri(settings.mlflow_uri)
    mlflow.set_registry_uri(settings.mlflow_uri)
    client = MlflowClient(settings.mlflow_uri)
    run_id = spec.run_id or new_run(client, spec.name, "finetune")
    stage = stages(client, run_id, say)
    try:
        stage("reading the data")
        frame, digest = load(spec)
        X, y = datamod.split_label(frame, spec.label)
        version = parent_version(settings, spec)
        stage(f"opening version {version} of '{spec.name}'")
        with tempfile.TemporaryDirectory(prefix="maas-parent-") as tmp:
            parent = open_parent(settings, spec.name, version, Path(tmp))
            return _finetune(spec, settings, stage, client, run_id, parent, version, X, y, digest)
    except BaseException as exc:
        client.set_tag(run_id, STAGE_TAG, f"failed: {exc}"[:4000])
        client.set_terminated(run_id, "FAILED")
        raise


def _finetune(
    spec: FinetuneSpec,
    settings: Settings,
    stage: Say,
    client: MlflowClient,
    run_id: str,
    parent: Parent,
    version: str,
    X: pd.DataFrame,
    y: pd.Series,
    digest: str,
) -> TrainResult:
    import mlflow.pyfunc

    where = f"version {version} of '{spec.name}'"
    rows = rows_of(parent.layout, X, where)
    targets = parent.targets(y.to_numpy())
    train_rows, test_rows = split_rows(y, parent.task, spec.test_size, spec.seed)
    inputs = parent.inputs(rows)
    truth = _truth(parent, targets[test_rows], y.to_numpy()[test_rows])
    served = mlflow.pyfunc.load_model(str(parent.folder))
    before = scores(parent.task, truth, parent.predictions(served, rows[test_rows]))
    stage(f"v{version} on {len(test_rows)} held-out rows: {_line(before)}")
    fits(spec)
    state, figures = _train(spec, settings, stage, run_id, version, inputs, targets, train_rows,
                            test_rows)  # fmt: skip
    stage("logging the fine-tuned version")
    example = parent.model_input(rows[train_rows[:2]])
    with mlflow.start_run(run_id=run_id):
        info = save_child(parent, state, example)
        child = mlflow.pyfunc.load_model(info.model_uri)
        after = scores(parent.task, truth, parent.predictions(child, rows[test_rows]))
        mlflow.log_params(_params(spec, version, len(train_rows), len(test_rows), parent))
        mlflow.log_metrics({**after, **{f"parent_{k}": v for k, v in before.items()}, **figures})
        mlflow.set_tags({DATA_TAG: digest, TASK_TAG: parent.task, PARENT_TAG: version})
    stage(f"registering (held-out {_line(after)})")
    child_version = register(
        settings, spec, str(info.model_uri), run_id, digest, {PARENT_TAG: version}
    )
    result = TrainResult(
        model=spec.name,
        version=child_version,
        run_id=run_id,
        task=parent.task,  # type: ignore[arg-type]
        metrics=after,
        data_sha256=digest,
        n_train=len(train_rows),
        n_test=len(test_rows),
        parent={"version": version, "metrics": before},
        figures=figures,
    )
    if spec.promote_if_better:
        stage(f"comparing with @{PRODUCTION} on the held-out rows")
        promote_if_better(
            settings, spec.name, spec.promote_if_better, result,
            lambda v: before if v == version else _score(settings, spec.name, v, parent,
                                                         rows[test_rows], truth),
        )  # fmt: skip
    client.set_tag(run_id, VERSION_TAG, child_version)
    client.set_tag(run_id, PROMOTED_TAG, str(result.promoted).lower())
    stage("done")
    return result


def fits(spec: FinetuneSpec) -> None:
    """The workers fit beside what serving holds now, or a one-line 400 (Ray would
    otherwise wait for CPUs that replicas keep)."""
    import ray

    free = ray.available_resources()
    asks = {
        "CPU": spec.workers * spec.cpus_per_worker,
        "GPU": spec.workers * spec.num_gpus_per_worker,
    }
    for resource, need in asks.items():
        have = float(free.get(resource, 0.0))
        if need > have + 1e-9:
            raise BadRequest(
                f"{spec.workers} workers need {need:g} {resource}s; {have:g} are free beside "
                "serving: lower --workers, --cpus-per-worker or --num-gpus-per-worker, or "
                "undeploy a model"
            )


def _train(
    spec: FinetuneSpec,
    settings: Settings,
    stage: Say,
    run_id: str,
    version: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    train_rows: Any,
    test_rows: Any,
) -> tuple[dict[str, Any], dict[str, float]]:
    """The Ray Train run; the final module state and how fast it went."""
    import ray.data
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    from maas_ray.training.torch_loop import read_state, train_loop

    gpus = spec.num_gpus_per_worker
    # One array per row where a row is many values (features, token ids): Ray Data
    # keeps them as a tensor column that iter_torch_batches stacks.
    y_train = targets[train_rows]
    dataset = ray.data.from_pandas(
        pd.DataFrame(
            {"x": list(inputs[train_rows]), "y": list(y_train) if y_train.ndim > 1 else y_train}
        )
    )
    trainer = TorchTrainer(
        train_loop,
        train_loop_config={
            "name": spec.name,
            "version": version,
            "lr": spec.lr,
            "epochs": spec.epochs,
            "batch_size": spec.batch_size,
            "seed": spec.seed,
            "threads": max(1, int(spec.cpus_per_worker)),
            "run_id": run_id,
            "tracking_uri": settings.mlflow_uri,
            "held_x": inputs[test_rows],
            "held_y": targets[test_rows],
        },
        scaling_config=ScalingConfig(
            num_workers=spec.workers,
            use_gpu=gpus > 0,
            resources_per_worker={"CPU": spec.cpus_per_worker, **({"GPU": gpus} if gpus else {})},
        ),
        datasets={"train": dataset},
        run_config=RunConfig(
            name=f"finetune-{spec.name}-{run_id}",
            storage_path=str(settings.home / "training"),
            failure_config=FailureConfig(max_failures=spec.max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    how = f"{spec.workers} worker{'s' if spec.workers > 1 else ''}, " + (
        f"{gpus:g} GPU each (NCCL)" if gpus else f"{spec.cpus_per_worker:g} CPU each (gloo)"
    )
    stage(f"training {len(train_rows)} rows for {spec.epochs} epochs ({how}, Ray Train)")
    done = threading.Event()
    watcher = threading.Thread(
        target=_watch, args=(settings, run_id, spec.epochs, stage, done), daemon=True
    )
    started = time.perf_counter()
    watcher.start()
    # Ray Train's controller polls its workers every 2 s by default, and a worker's
    # report waits until the one before was taken in: each epoch took at least 2 s and
    # every step of the run (start, finish, a restart) waited up to as long again.
    # The driver's value reaches the controller (Ray Train propagates it).
    os.environ.setdefault(POLL_ENV, POLL_S)
    try:
        result = trainer.fit()
    finally:
        done.set()
        watcher.join(timeout=5)
    wall = time.perf_counter() - started
    state = read_state(result.checkpoint)
    if state is None:
        raise MaasError("the fine-tune ended without a checkpoint")
    history = MlflowClient(settings.mlflow_uri).get_metric_history(run_id, "group_samples_per_s")
    rates = [m.value for m in history]
    return state["model"], {
        "train_seconds": wall,  # the whole Ray Train run: workers started, every epoch
        # rows per second of the worker group while it trained (the mean over epochs)
        "train_samples_per_s": sum(rates) / len(rates) if rates else 0.0,
        "workers": float(spec.workers),
    }


def _watch(settings: Settings, run_id: str, epochs: int, stage: Say, done: threading.Event) -> None:
    """Say each epoch as rank 0 logs it (the job's log, so the CLI's progress); once
    the run is done, one last look says the epochs logged since the poll before."""
    client = MlflowClient(settings.mlflow_uri)
    said = 0
    finished = False
    while not finished:
        finished = done.wait(_PROGRESS_POLL_S)
        try:
            history = {m.step: m.value for m in client.get_metric_history(run_id, "train_loss")}
            held = {m.step: m.value for m in client.get_metric_history(run_id, "held_out_loss")}
        except Exception:  # a hiccup of the tracking server: try again next poll
            continue
        for step in sorted(s for s in history if s > said):
            stage(
                f"epoch {step}/{epochs}: train_loss {history[step]:.4f}, "
                f"held_out_loss {held.get(step, float('nan')):.4f}"
            )
            said = step


def _truth(parent: Parent, targets: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Held-out labels as scores compare them (class indices as integers; a sequence
    model's label texts, which its answers are scored against)."""
    if parent.sequence:
        return np.asarray([str(t) for t in labels], dtype=object)
    if parent.task == "classification":
        return np.asarray(targets).astype(np.int64)
    return np.asarray(targets)


def _score(
    settings: Settings, name: str, version: str, parent: Parent, rows: np.ndarray, truth: Any
) -> dict[str, float]:
    """Another version's scores on the held-out rows (the production one, for promotion)."""
    import mlflow.pyfunc

    from maas_ray.registry import Registry

    with tempfile.TemporaryDirectory(prefix="maas-compare-") as tmp:
        local = Registry(settings.mlflow_uri).download_verified(name, version, tmp)
        model = mlflow.pyfunc.load_model(str(local))
        return scores(parent.task, truth, parent.predictions(model, rows))


def _params(
    spec: FinetuneSpec, version: str, n_train: int, n_test: int, parent: Parent
) -> dict[str, Any]:
    return {
        "parent_version": version,
        "label": spec.label,
        "workers": spec.workers,
        "cpus_per_worker": spec.cpus_per_worker,
        "num_gpus_per_worker": spec.num_gpus_per_worker,
        "epochs": spec.epochs,
        "lr": spec.lr,
        "batch_size": spec.batch_size,
        "test_size": spec.test_size,
        "seed": spec.seed,
        "max_failures": spec.max_failures,
        "loss": parent.loss,
        "packaging": parent.layout.kind,
        "n_train": n_train,
        "n_test": n_test,
    }


def _line(metrics: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
