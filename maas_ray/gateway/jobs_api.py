"""The management API's training and job routes (declared in ``maas_ray/routes/management.py``).

``POST /v1/admin/train`` checks the spec, opens the training's MLflow run (unless
the SDK staged one), submits ``python -m maas_ray.jobs.train`` as a Ray job and
answers 202 with the job at once (``POST /v1/admin/tune``: the same for a search,
``maas_ray.jobs.tune``); ``/v1/admin/jobs`` lists, reads, and stops jobs.
``POST /v1/admin/models/{name}/finetune`` checks what it can without loading the
model (it exists, it is PyTorch, the data reads and fits its signature), pins the
parent version, and submits ``python -m maas_ray.jobs.finetune`` the same way.
A training runs code the caller names (a factory, a pickled pipeline): only the
``train`` scope (or ``admin``) opens it. ``POST /v1/admin/models/{name}/retrain``
starts the monitoring's retrain loop by hand (``monitoring/retrain.py``).
"""

from __future__ import annotations

from typing import Any

from maas_ray.errors import BadRequest, MaasError, NotFound, PlatformUnavailable
from maas_ray.gateway.admin import Call, Context, _object, _validated, handles
from maas_ray.jobs.submit import Jobs
from maas_ray.monitoring.api import Monitor
from maas_ray.monitoring.models import RetrainBody
from maas_ray.training_spec import FinetuneBody, FinetuneSpec, TrainingSpec, TuningSpec


@handles("train", TrainingSpec)
def _train(c: Context) -> tuple[int, Any]:
    return _submit(c, "train")


@handles("tune", TuningSpec)
def _tune(c: Context) -> tuple[int, Any]:
    return _submit(c, "tune")


def _submit(c: Context, kind: str) -> tuple[int, Any]:
    from mlflow.tracking import MlflowClient

    from maas_ray.training.run import new_run

    spec: TrainingSpec = c.parsed
    if spec.run_id is None:
        spec = spec.model_copy(
            update={"run_id": new_run(MlflowClient(c.settings.mlflow_uri), spec.name, kind)}
        )
    jobs = Jobs(c.settings)
    job_id = jobs.submit(
        kind,
        spec.name,
        ["--spec", spec.model_dump_json(exclude_none=True)],
        spec.run_id,
        c.call.actor,
    )
    info = jobs.get(job_id)
    return 202, info.model_dump()


def _finetune_body(call: Call) -> FinetuneSpec:
    body = _validated(FinetuneBody, _object(call.body or b"{}"))
    try:
        return body.spec(call.params["name"])
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc


@handles("finetune", _finetune_body)
def _finetune(c: Context) -> tuple[int, Any]:
    from mlflow.tracking import MlflowClient

    from maas_ray.training.finetune import check, fits
    from maas_ray.training.run import load, new_run

    spec: FinetuneSpec = c.parsed
    try:
        frame, _ = load(spec, tracking_uri=c.settings.mlflow_uri)
    except MaasError:
        raise
    except Exception as exc:  # an artifact URI MLflow cannot read: the caller's to fix
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadRequest(f"could not read data '{spec.data}': {first}"[:500]) from exc
    version = check(c.settings, spec, frame, full=False)
    fits(spec)  # the workers fit beside serving now (this replica is on the cluster)
    update: dict[str, Any] = {"from_version": version}  # the parent, pinned now
    if spec.run_id is None:
        update["run_id"] = new_run(MlflowClient(c.settings.mlflow_uri), spec.name, "finetune")
    spec = spec.model_copy(update=update)
    jobs = Jobs(c.settings)
    job_id = jobs.submit(
        "finetune",
        spec.name,
        ["--spec", spec.model_dump_json(exclude_none=True)],
        spec.run_id,
        c.call.actor,
    )
    return 202, jobs.get(job_id).model_dump()


def _retrainer() -> Any:
    monitor = Monitor.current  # the management replica's
    if monitor is None:
        raise PlatformUnavailable("the management application's monitor is not running")
    return monitor.retrainer


@handles("retrain", RetrainBody, optional=True)
def _retrain(c: Context) -> tuple[int, Any]:
    state = _retrainer().by_hand(c.call.name, c.parsed, c.call.actor)
    return 202, state.model_dump()


@handles("retrain_state")
def _retrain_state(c: Context) -> tuple[int, Any]:
    state = _retrainer().state(c.call.name)
    if state is None:
        raise NotFound(f"'{c.call.name}' has never been retrained (maas retrain starts one)")
    return 200, state.model_dump()


@handles("jobs")
def _jobs(c: Context) -> tuple[int, Any]:
    return 200, [job.model_dump() for job in Jobs(c.settings).list()]


@handles("job")
def _job(c: Context) -> tuple[int, Any]:
    return 200, Jobs(c.settings).get(c.call.params["job_id"]).model_dump()


@handles("job_logs")
def _job_logs(c: Context) -> tuple[int, Any]:
    job_id = c.call.params["job_id"]
    return 200, {"id": job_id, "logs": Jobs(c.settings).logs(job_id)}


@handles("stop_job")
def _stop_job(c: Context) -> tuple[int, Any]:
    return 200, Jobs(c.settings).stop(c.call.params["job_id"]).model_dump()
