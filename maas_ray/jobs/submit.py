"""The platform's side of Ray jobs: submit a training, list, read, stop.

Through Ray's ``JobSubmissionClient`` against the cluster's dashboard (with the
cluster's token). A job of ours carries metadata (``maas.kind``, ``maas.model``,
``maas.run_id``, ``maas.submitted_by``); its progress is the last ``stage:`` line
of its log and its result the ``MAAS_RESULT`` line, so jobs submitted with
``ray job submit`` by hand read the same way.
"""

from __future__ import annotations

import shlex
from typing import Any

from maas_ray.errors import NotFound, PlatformUnavailable
from maas_ray.security.ray_token import dashboard_headers
from maas_ray.settings import Settings
from maas_ray.training.result import JobInfo, TrainResult

RESULT_PREFIX = "MAAS_RESULT "  # the last line a job of ours prints (jobs/train.py)
STAGE_PREFIX = "stage: "
_META = "maas."
# Read by serving/warm.py (not imported here: importing it starts its imports).
WARM_SWITCH = "MAAS_WARM_IMPORTS"


class Jobs:
    """Ray jobs on the platform's cluster."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            try:
                self._client = JobSubmissionClient(
                    self.settings.dashboard_url, headers=dashboard_headers(self.settings)
                )
            except Exception as exc:  # Ray raises ConnectionError and others here
                raise PlatformUnavailable(
                    f"Ray's job API at {self.settings.dashboard_url} does not answer: {exc}"
                ) from exc
        return self._client

    def submit(self, kind: str, model: str, args: list[str], run_id: str | None, actor: str) -> str:
        """Start ``python -m maas_ray.jobs.<kind> ARGS``; returns the job id."""
        entrypoint = shlex.join(["python", "-m", f"maas_ray.jobs.{kind}", *args])
        metadata = {f"{_META}kind": kind, f"{_META}model": model, f"{_META}submitted_by": actor}
        if run_id:
            metadata[f"{_META}run_id"] = run_id
        job_id: str = self.client.submit_job(
            entrypoint=entrypoint,
            metadata=metadata,
            entrypoint_num_cpus=0,
            # The job's workers (Ray Train's, Ray Data's, its supervisor) start fresh
            # and skip the model-loading imports every serving worker makes at start.
            runtime_env={"env_vars": {WARM_SWITCH: "0"}},
        )
        return job_id

    def list(self) -> list[JobInfo]:
        """Every job the cluster knows, newest first."""
        jobs = [self._info(d) for d in self.client.list_jobs()]
        return sorted(jobs, key=lambda j: j.start_time or 0, reverse=True)

    def get(self, job_id: str) -> JobInfo:
        """One job, with its stage and, once it succeeded, its result."""
        try:
            details = self.client.get_job_info(job_id)
        except RuntimeError as exc:
            raise NotFound(f"no job '{job_id}' on this cluster") from exc
        info = self._info(details)
        log = self.logs(job_id)
        for line in log.splitlines():
            if line.startswith(STAGE_PREFIX):
                info.stages.append(line.removeprefix(STAGE_PREFIX))
            elif line.startswith(RESULT_PREFIX):
                info.result = TrainResult.model_validate_json(line.removeprefix(RESULT_PREFIX))
        info.stage = info.stages[-1] if info.stages else None
        if info.status == "FAILED":
            errors = [line for line in log.splitlines() if line.startswith("error: ")]
            if errors:
                info.message = errors[-1].removeprefix("error: ")
        return info

    def logs(self, job_id: str) -> str:
        """A job's log so far."""
        try:
            return str(self.client.get_job_logs(job_id))
        except RuntimeError as exc:
            raise NotFound(f"no job '{job_id}' on this cluster") from exc

    def stop(self, job_id: str) -> JobInfo:
        """Ask a job to stop (a finished one stays as it ended)."""
        try:
            self.client.stop_job(job_id)
        except RuntimeError as exc:
            raise NotFound(f"no job '{job_id}' on this cluster") from exc
        return self._info(self.client.get_job_info(job_id))

    @staticmethod
    def _info(details: Any) -> JobInfo:
        meta = details.metadata or {}
        status = getattr(details.status, "value", details.status)
        return JobInfo.model_validate(
            {
                "id": details.submission_id or details.job_id or "",
                "status": str(status),
                "kind": meta.get(f"{_META}kind"),
                "model": meta.get(f"{_META}model"),
                "run_id": meta.get(f"{_META}run_id"),
                "submitted_by": meta.get(f"{_META}submitted_by"),
                "entrypoint": details.entrypoint,
                "message": details.message,
                "start_time": details.start_time / 1000 if details.start_time else None,
                "end_time": details.end_time / 1000 if details.end_time else None,
            }
        )
