"""What a retrain trains on, and the job that trains it.

The labelled window as rows (``labelled_rows``), staged as the input of a new run in
the training experiment; the job that fits it: a fine-tune for a PyTorch version, a
clone of a scikit-learn version's estimator fit again (``submit``). The loop that
decides when to call it and what to do with its result is ``retrain.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from maas_ray.errors import BadRequest
from maas_ray.monitoring import drift, quality
from maas_ray.settings import Settings
from maas_ray.spec import RetrainPolicy
from maas_ray.training.result import PARENT_TAG
from maas_ray.training_spec import FinetuneSpec, TrainingSpec

LABEL = "maas_label"  # the label column of the staged rows
RETRAIN_TAG = "maas.retrain"  # on the retrained version: why it was trained


def labelled_rows(
    predictions: pa.Table, labels: dict[str, Any], names: list[str], since: float
) -> pd.DataFrame:
    """One row per labelled input row of the production answers since ``since``: the
    inputs as logged (named by the signature) and the label in column ``LABEL``."""
    times = predictions.column("time")
    mask = pc.and_(
        pc.and_(pc.equal(predictions.column("arm"), "production"), pc.greater_equal(times, since)),
        pc.equal(predictions.column("status"), 200),
    )
    kept = predictions.filter(mask)
    frames = []
    for rid, text, ctype in zip(
        kept.column("request_id").to_pylist(),
        kept.column("inputs").to_pylist(),
        kept.column("content_type").to_pylist(),
        strict=True,
    ):
        if rid not in labels:
            continue
        try:
            frame = drift.named(drift.rows_of(text, ctype), names)
        except (ValueError, TypeError, pd.errors.ParserError):
            continue  # a body that no longer parses (masked beyond reading): skipped
        label = labels[rid]
        truths = label if isinstance(label, list) else [label]
        if frame.empty or len(truths) != len(frame) or LABEL in frame.columns:
            continue
        frames.append(frame.assign(**{LABEL: truths}))
    if not frames:
        return pd.DataFrame()
    frame = pd.concat(frames, ignore_index=True)
    frame.columns = [str(c) for c in frame.columns]
    for column in frame.columns:  # 1 and "1" in one column: text (Parquet takes one type)
        values = frame[column]
        if values.dtype == object and len({type(v) for v in values.dropna()}) > 1:
            frame[column] = values.map(lambda v: v if v is None else str(v))
    return frame


def task_of(labels: pd.Series) -> str | None:
    """classification or regression, read from the labels' values."""
    return quality.task_of([(v, v) for v in labels.tolist()])


def submit(
    registry: Any,
    settings: Settings,
    model: str,
    version: str,
    frame: pd.DataFrame,
    policy: RetrainPolicy,
    reason: str,
    actor: str,
    free: float,
) -> tuple[str, str, str]:
    """Stage ``frame`` (the labelled window of ``version``) in a new training run and
    submit the job that retrains on it, with at most ``free`` CPUs: its kind
    (``finetune`` or ``train``), job id and run id. A run whose job could not be
    submitted is closed FAILED."""
    from mlflow.tracking import MlflowClient

    from maas_ray.jobs.submit import Jobs
    from maas_ray.training.data import sha256
    from maas_ray.training.run import new_run

    kind, pickled = _kind(registry, settings, model, version)
    client = MlflowClient(settings.mlflow_uri)
    run_id = new_run(client, model, "retrain")
    lineage = {PARENT_TAG: version, RETRAIN_TAG: reason[:250]}
    description = f"retrained from version {version} on {len(frame)} labelled predictions"
    with tempfile.TemporaryDirectory(prefix="maas-retrain-") as tmp:
        data = Path(tmp) / "data.parquet"
        frame.to_parquet(data, index=False)
        client.log_artifact(run_id, str(data), artifact_path="input")
        digest = sha256(data.read_bytes())
        uri = f"runs:/{run_id}/input/data.parquet"
        common = {
            "name": model,
            "data": uri,
            "label": LABEL,
            "description": description,
            "tags": lineage,
            "data_sha256": digest,
            "run_id": run_id,
        }
        if kind == "finetune":
            job_spec: TrainingSpec | FinetuneSpec = FinetuneSpec.model_validate(
                {
                    **common,
                    "from_version": version,
                    "epochs": policy.epochs,
                    "cpus_per_worker": min(1.0, free),
                }
            )
        else:
            pipeline = Path(tmp) / "pipeline.pkl"
            pipeline.write_bytes(pickled)
            client.log_artifact(run_id, str(pipeline), artifact_path="input")
            job_spec = TrainingSpec.model_validate(
                {
                    **common,
                    "pipeline": f"runs:/{run_id}/input/pipeline.pkl",
                    "num_cpus": min(1.0, free),
                    "array_input": _array_input(registry.get_version(model, version)),
                }
            )
    try:
        job_id = Jobs(settings).submit(
            kind, model, ["--spec", job_spec.model_dump_json(exclude_none=True)], run_id, actor
        )
    except BaseException:
        client.set_terminated(run_id, "FAILED")  # no job will ever close this run
        raise
    return kind, job_id, run_id


def _array_input(info: Any) -> bool:
    """True when the version takes one unnamed 2-D tensor (registered from NumPy)."""
    return not drift.input_names(info.signature) and bool((info.signature or {}).get("inputs"))


def _kind(registry: Any, settings: Settings, model: str, version: str) -> tuple[str, bytes]:
    """("finetune", b"") for a PyTorch version; ("train", the pickled unfitted clone of
    its estimator) for a scikit-learn one; a 400 for anything else."""
    import mlflow.artifacts
    from mlflow.models import Model

    where = f"version {version} of '{model}'"
    with tempfile.TemporaryDirectory(prefix="maas-retrain-") as tmp:
        source = registry.client.get_model_version_download_uri(model, version)
        mlmodel = mlflow.artifacts.download_artifacts(
            artifact_uri=f"{source.rstrip('/')}/MLmodel", dst_path=tmp,
            tracking_uri=settings.mlflow_uri,
        )  # fmt: skip
        flavors = Model.load(mlmodel).flavors
        pyfunc = flavors.get("python_function", {})
        if (
            "pytorch" in flavors
            or pyfunc.get("loader_module") == "mlflow.pyfunc.loaders.code_model"
        ):
            from maas_ray.training.torch_model import inspect

            inspect(Path(mlmodel), model, version)  # a 400 unless the platform can tune it
            return "finetune", b""
        if "sklearn" not in flavors:
            other = next((f for f in flavors if f != "python_function"), "python_function")
            raise BadRequest(
                f"{where} is a {other} model: the platform retrains scikit-learn versions "
                "(the estimator cloned and fit again) and PyTorch ones (fine-tuned); train "
                "a new version (maas train) and canary it instead"
            )
        import cloudpickle
        import mlflow.sklearn
        from sklearn.base import clone

        local = registry.download_verified(model, version, Path(tmp) / "model")
        estimator = mlflow.sklearn.load_model(str(local))
        return "train", cloudpickle.dumps(clone(estimator))
