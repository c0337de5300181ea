"""The SDK's training verbs: train, finetune, retrain, and the Ray jobs that run them.

``MaaS().train(data, pipeline, name=...)`` checks the data and the pipeline here,
stages them in the training's MLflow run, and asks the management API to run
``maas_ray.jobs.train`` as a Ray job (``POST /v1/admin/train``); it waits for the
job (each stage to ``progress``) and returns the ``TrainResult``, or, with
``wait=False``, the ``JobInfo`` at once. Inside the cluster (a Ray job's driver,
``ray.is_initialized()``) the training runs in the calling process instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from maas_ray.errors import PlatformUnavailable, RemoteError
from maas_ray.monitoring.models import RetrainState
from maas_ray.training.result import JobInfo, TrainResult
from maas_ray.training_spec import TrainingSpec

if TYPE_CHECKING:
    from maas_ray.settings import Settings
    from maas_ray.transport import Transport

Progress = Callable[[str], None]
_POLL_S = 0.5
_JOB_TIMEOUT_S = 3600.0  # how long train() waits for its job before it says so


class Training:
    """Mixed into ``MaaS``; needs its ``settings`` and ``_http`` transport."""

    settings: Settings
    _http: Transport

    def train(
        self,
        data: Any,
        pipeline: Any,
        *,
        name: str,
        label: str = "target",
        test_size: float = 0.2,
        seed: int = 0,
        num_cpus: float = 1.0,
        promote_if_better: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait: bool = True,
        progress: Progress | None = None,
    ) -> Any:
        """Fit ``pipeline`` on ``data`` on the cluster and register a new version of ``name``.

        Args:
            data: A pandas DataFrame (label in column ``label``), a list of
                ``(features, label)`` pairs, or the path of a CSV or Parquet file.
            pipeline: An unfitted scikit-learn estimator or pipeline, a factory
                ``"module:callable"``, or estimator steps ``[{"module.Class": {params}}]``.
            name: The registered model to add a version to.
            label: The label column.
            test_size: Share of rows held out (stratified for classification).
            seed: Seed of the split and of the estimator's unset ``random_state``.
            num_cpus: CPUs the fit task declares.
            promote_if_better: A metric (``accuracy``, ``f1``, ``rmse``, ...): promote
                to ``@production`` only if the new version beats it on the same rows.
            description: The version's description.
            tags: More tags for the version.
            wait: False: return the job at once.
            progress: Called with each stage of the training.

        Returns:
            ``TrainResult`` (version, run id, held-out metrics), or ``JobInfo`` with
            ``wait=False``.
        """
        fields = {
            "name": name,
            "label": label,
            "test_size": test_size,
            "seed": seed,
            "num_cpus": num_cpus,
            "promote_if_better": promote_if_better,
            "description": description,
            "tags": tags or {},
        }
        return self.train_spec(None, data, pipeline, fields, wait=wait, progress=progress)

    def train_spec(
        self,
        base: Path | None,
        data: Any,
        pipeline: Any,
        fields: dict[str, Any],
        *,
        wait: bool = True,
        progress: Progress | None = None,
    ) -> Any:
        """``train`` with the spec's fields as a dict (``maas train --config`` uses it);
        a relative data path is taken from ``base``."""
        from maas_ray.training.staging import checked, stage
        from maas_ray.training_spec import TuningSpec

        tuning = fields.get("kind") == "MaasTuning" or "search" in fields
        say = progress or (lambda _: None)
        say("checking the data and the pipeline")
        model = TuningSpec if tuning else TrainingSpec
        spec, raw, suffix, pickled = checked(data, pipeline, fields, base, model)
        say(f"staging {len(raw):,} bytes of data in MLflow")
        spec = stage(self.settings, spec, raw, suffix, pickled, "tune" if tuning else "train")
        if _in_cluster():
            from maas_ray.training.run import train
            from maas_ray.training.tune import tune

            if isinstance(spec, TuningSpec):
                return tune(spec, self.settings, say=say)
            return train(spec, self.settings, say=say)
        route = "tune" if tuning else "train"
        job = JobInfo.model_validate(self._http.admin(route, _body(spec)))
        say(f"job {job.id} submitted (run {spec.run_id})")
        return self.wait_job(job, progress) if wait else job

    def tune(
        self,
        data: Any,
        pipeline: Any,
        *,
        name: str,
        search: dict[str, Any],
        metric: str = "accuracy",
        trials: int = 1,
        label: str = "target",
        test_size: float = 0.2,
        seed: int = 0,
        num_cpus: float = 1.0,
        promote_if_better: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait: bool = True,
        progress: Progress | None = None,
    ) -> Any:
        """Search ``pipeline``'s hyperparameters with Ray Tune; register the best.

        ``search`` maps scikit-learn parameter names (``get_params()``) to a list of
        values (a grid) or ``{"uniform"|"loguniform"|"randint": [low, high]}``; each
        trial is a child MLflow run of the search's run; the best on the held-out
        ``metric`` is fit, logged and registered as ``train`` does. Trials run at
        most as many at once as the CPUs beside serving hold. The other arguments
        are ``train``'s.
        """
        fields = {
            "kind": "MaasTuning",
            "name": name,
            "search": search,
            "metric": metric,
            "trials": trials,
            "label": label,
            "test_size": test_size,
            "seed": seed,
            "num_cpus": num_cpus,
            "promote_if_better": promote_if_better,
            "description": description,
            "tags": tags or {},
        }
        return self.train_spec(None, data, pipeline, fields, wait=wait, progress=progress)

    def finetune(
        self,
        name: str,
        data: Any,
        *,
        from_version: str | int | None = None,
        label: str = "target",
        workers: int = 1,
        num_gpus_per_worker: float = 0,
        cpus_per_worker: float = 1.0,
        epochs: int = 2,
        lr: float = 1e-3,
        batch_size: int = 32,
        test_size: float = 0.2,
        seed: int = 0,
        max_failures: int = 1,
        promote_if_better: str | None = None,
        description: str | None = None,
        tags: dict[str, str] | None = None,
        wait: bool = True,
        progress: Progress | None = None,
    ) -> Any:
        """Train a registered PyTorch version further with Ray Train; register the child.

        Args:
            name: The registered model.
            data: A DataFrame or a CSV/Parquet path: the label column and the features
                (the other columns, in the order of the model's signature).
            from_version: The parent; None: the version ``@production`` names.
            label: The label column.
            workers: Ray Train workers (DDP: gloo on CPU, NCCL with GPUs).
            num_gpus_per_worker: GPUs each worker takes.
            cpus_per_worker: CPUs each worker declares.
            epochs, lr, batch_size: The run (Adam; ``batch_size`` rows per worker step).
            test_size: Share of rows held out; parent and child are scored on them.
            seed: Seed of the split and of the workers.
            max_failures: Worker-group failures the run resumes from its last checkpoint.
            promote_if_better: Promote only if the child beats ``@production`` on this
                held-out metric.
            description, tags: The new version's.
            wait: False: return the job at once.
            progress: Called with each stage (one per epoch).

        Returns:
            ``TrainResult`` (the child's version and held-out metrics, its parent's
            beside them in ``parent``), or ``JobInfo`` with ``wait=False``.
        """
        from maas_ray.training.staging import checked_finetune, stage

        say = progress or (lambda _: None)
        fields = {
            "name": name,
            "from_version": None if from_version is None else str(from_version),
            "label": label,
            "workers": workers,
            "num_gpus_per_worker": num_gpus_per_worker,
            "cpus_per_worker": cpus_per_worker,
            "epochs": epochs,
            "lr": lr,
            "batch_size": batch_size,
            "test_size": test_size,
            "seed": seed,
            "max_failures": max_failures,
            "promote_if_better": promote_if_better,
            "description": description,
            "tags": tags or {},
        }
        say("checking the data and the model")
        spec, raw, suffix = checked_finetune(self.settings, data, fields)
        say(f"staging {len(raw):,} bytes of data in MLflow")
        spec = stage(self.settings, spec, raw, suffix, verb="finetune")
        if _in_cluster():
            from maas_ray.training.finetune import finetune

            return finetune(spec, self.settings, say=say)
        body = spec.model_dump(exclude_none=True, exclude={"name"})
        job = JobInfo.model_validate(self._http.admin("finetune", body, name=name))
        say(f"job {job.id} submitted (run {spec.run_id}, from version {spec.from_version})")
        return self.wait_job(job, progress) if wait else job

    def wait_job(self, job: JobInfo, progress: Progress | None = None) -> TrainResult:
        """Wait for a training job; its result, or its error raised as a RemoteError."""
        deadline = time.monotonic() + _JOB_TIMEOUT_S
        said = 0  # stages passed on so far: each once, none skipped between two polls
        while True:
            if progress is not None:
                for stage in job.stages[said:]:
                    progress(stage)
                said = max(said, len(job.stages))
            if job.done:
                break
            if time.monotonic() > deadline:
                raise PlatformUnavailable(
                    f"job {job.id} still {job.status} after {_JOB_TIMEOUT_S:.0f}s; "
                    f"`maas jobs show {job.id}` tells how it goes"
                )
            time.sleep(_POLL_S)
            job = self.job(job.id)
        if job.status != "SUCCEEDED" or job.result is None:
            raise RemoteError(
                f"job {job.id} {job.status.lower()}: {job.message or 'no result'}; "
                f"`maas jobs logs {job.id}` has its log",
                status_code=422 if job.status == "FAILED" else 409,
                remote_code="job_failed" if job.status == "FAILED" else "job_stopped",
            )
        return job.result

    def retrain(
        self,
        name: str,
        *,
        min_labels: int | None = None,
        canary_percent: float | None = None,
        window_s: float | None = None,
        epochs: int | None = None,
        wait: bool = True,
        progress: Progress | None = None,
    ) -> RetrainState:
        """Retrain the serving version of ``name`` on its labelled predictions.

        The management replica stages the window's labelled predictions and runs the
        training as a Ray job (a scikit-learn version's estimator fit again, a
        PyTorch version fine-tuned); the new version then runs as a canary and is
        promoted only if it beats production on the labels that follow. Arguments
        left None take the deployment spec's ``retrain`` policy, else its defaults.

        Args:
            wait: Wait until the job ended and the canary started (or it failed).
            progress: Called with the job's stages.

        Returns:
            The retrain's ``RetrainState`` (``state``: training, canary, failed, ...).
        """
        asked = {
            "min_labels": min_labels,
            "canary_percent": canary_percent,
            "window_s": window_s,
            "epochs": epochs,
        }
        body = {k: v for k, v in asked.items() if v is not None}
        state = RetrainState.model_validate(self._http.admin("retrain", body, name=name))
        if not wait:
            return state
        say = progress or (lambda _: None)
        say(f"{state.kind} job {state.job_id} on {state.rows} labelled predictions")
        if state.job_id is not None:
            try:
                self.wait_job(self.job(state.job_id), progress)
            except RemoteError:
                pass  # the retrain's state says why
        deadline = time.monotonic() + self.settings.deploy_timeout_s + 60
        while state.state == "training" and time.monotonic() < deadline:
            say(f"starting version {state.version or '?'} as a canary")
            time.sleep(_POLL_S)
            state = self.retraining(name)
        return state

    def retraining(self, name: str) -> RetrainState:
        """The last retrain of ``name``: its step, job, version and decision."""
        return RetrainState.model_validate(self._http.admin("retrain_state", name=name))

    def jobs(self) -> list[JobInfo]:
        """Ray jobs on the platform's cluster, newest first."""
        return [JobInfo.model_validate(j) for j in self._http.admin("jobs")]

    def job(self, job_id: str) -> JobInfo:
        """One job: status, stage, and the result of a finished training."""
        return JobInfo.model_validate(self._http.admin("job", job_id=job_id))

    def job_logs(self, job_id: str) -> str:
        """A job's log so far."""
        return str(self._http.admin("job_logs", job_id=job_id)["logs"])

    def stop_job(self, job_id: str) -> JobInfo:
        """Stop a job; a finished one stays as it ended."""
        return JobInfo.model_validate(self._http.admin("stop_job", job_id=job_id))


def _body(spec: TrainingSpec) -> dict[str, Any]:
    return spec.model_dump(exclude_none=True)


def _in_cluster() -> bool:
    """True in a process attached to a Ray cluster (a job's driver, a task)."""
    import sys

    ray = sys.modules.get("ray")
    return bool(ray is not None and ray.is_initialized())
