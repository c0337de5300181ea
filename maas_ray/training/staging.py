"""The client's half of a training: check everything it can before any cluster work,
then stage the inputs in the training's MLflow run for the job to read.

Checked here, each a one-line error: the data reads and has rows, the label column
is there and never empty, the pipeline builds (a factory imports, steps name real
classes), and the rows split (every class twice at least). Staged under the run's
``input/``: the data as given (a file's own bytes; in-memory data as CSV) and, for
a pipeline object, its cloudpickle. The data's SHA-256 goes with the spec, and the
job checks the bytes it reads against it.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from maas_ray.errors import BadRequest
from maas_ray.settings import Settings
from maas_ray.training import data as datamod
from maas_ray.training.estimators import build, task_of
from maas_ray.training.fit import split_rows
from maas_ray.training_spec import FinetuneSpec, TrainingSpec, TuningSpec

Staged = TypeVar("Staged", TrainingSpec, FinetuneSpec, TuningSpec)


def checked(
    data: Any,
    pipeline: Any,
    fields: dict[str, Any],
    base: Path | None = None,
    model: type[TrainingSpec] = TrainingSpec,
) -> tuple[TrainingSpec, bytes, str, bytes | None]:
    """The spec to submit (data and pipeline still to stage), the data's bytes and
    file suffix, and the pickled pipeline (None: the spec names it). ``model``:
    ``TuningSpec`` for a search (its parameters are checked against the pipeline)."""
    if isinstance(data, str | Path) and base is not None and not Path(data).is_absolute():
        data = base / data
    named = isinstance(pipeline, str | list)
    spec = _spec(
        {
            **fields,
            "data": str(data) if isinstance(data, str | Path) else "in-memory",
            # An object is staged as a pickle; until then a stand-in passes the check.
            "pipeline": pipeline if named else "staged:pipeline",
        },
        model,
    )
    frame, raw, suffix = datamod.to_frame(data, spec.label)
    X, y = datamod.split_label(frame, spec.label)
    estimator = build(pipeline)  # a factory that does not import fails here, not on the cluster
    if isinstance(spec, TuningSpec):
        from maas_ray.training.tune import checked_space

        checked_space(spec, estimator)
    split_rows(y, task_of(estimator, y), spec.test_size, spec.seed)
    pickled = None
    if not named:
        import cloudpickle

        pickled = cloudpickle.dumps(pipeline)
    return spec.model_copy(update={"data_sha256": datamod.sha256(raw)}), raw, suffix, pickled


def _spec(fields: dict[str, Any], model: type[Staged] = TrainingSpec) -> Staged:  # type: ignore[assignment]
    """The spec, or the first thing wrong with it in one line (a 400)."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        text = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a check across fields: its message names the field
            raise BadRequest(text) from exc
        where = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{where}: got {first['input']!r:.80}, {text}") from exc


def stage(
    settings: Settings,
    spec: Staged,
    raw: bytes,
    suffix: str,
    pickled: bytes | None = None,
    verb: str = "train",
) -> Staged:
    """Open the training's run, put the inputs in it; the spec pointing at them."""
    from mlflow.tracking import MlflowClient

    from maas_ray.training.run import new_run

    client = MlflowClient(settings.mlflow_uri)
    run_id = new_run(client, spec.name, verb)
    update: dict[str, Any] = {"run_id": run_id, "data": f"runs:/{run_id}/input/data{suffix}"}
    with tempfile.TemporaryDirectory(prefix="maas-stage-") as tmp:
        path = Path(tmp) / f"data{suffix}"
        path.write_bytes(raw)
        client.log_artifact(run_id, str(path), artifact_path="input")
        if pickled is not None:
            pickle = Path(tmp) / "pipeline.pkl"
            pickle.write_bytes(pickled)
            client.log_artifact(run_id, str(pickle), artifact_path="input")
            update["pipeline"] = f"runs:/{run_id}/input/pipeline.pkl"
    return spec.model_copy(update=update)


def checked_finetune(
    settings: Settings, data: Any, fields: dict[str, Any]
) -> tuple[FinetuneSpec, bytes, str]:
    """The fine-tune's spec (its parent pinned, its data's SHA-256 set) and the data's
    bytes and suffix, after every check that needs no cluster (the parent is
    downloaded and loaded here: its packaging, signature and labels are checked)."""
    from maas_ray.training.finetune import check

    spec = _spec(
        {**fields, "data": str(data) if isinstance(data, str | Path) else "in-memory"},
        FinetuneSpec,
    )
    frame, raw, suffix = datamod.to_frame(data, spec.label)
    version = check(settings, spec, frame, full=True)
    update = {"from_version": version, "data_sha256": datamod.sha256(raw)}
    return spec.model_copy(update=update), raw, suffix
