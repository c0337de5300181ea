"""The platform's view of a Ray job, read from Ray's job details and the job's log
(a fake JobSubmissionClient): stage, result, failure message, unknown ids."""

from __future__ import annotations

import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from maas_ray.errors import NotFound
from maas_ray.jobs.submit import WARM_SWITCH, Jobs
from maas_ray.settings import Settings

RESULT = (
    '{"model": "m", "version": "3", "run_id": "r", "task": "classification", '
    '"metrics": {"accuracy": 0.9}, "data_sha256": "' + "a" * 64 + '", '
    '"n_train": 8, "n_test": 2}'
)


class FakeRay:
    def __init__(self, status: str, log: str) -> None:
        self.status, self.log = status, log
        self.submitted: list[dict[str, Any]] = []

    def get_job_info(self, job_id: str) -> Any:
        if job_id != "raysubmit_1":
            raise RuntimeError(f"Job {job_id} does not exist")
        return SimpleNamespace(
            submission_id=job_id,
            job_id=None,
            status=SimpleNamespace(value=self.status),
            metadata={"maas.kind": "train", "maas.model": "m", "maas.run_id": "r"},
            entrypoint="python -m maas_ray.jobs.train --spec {}",
            message="Job finished",
            start_time=1_700_000_000_000,
            end_time=None,
        )

    def get_job_logs(self, job_id: str) -> str:
        self.get_job_info(job_id)
        return self.log

    def submit_job(self, **kwargs: Any) -> str:
        self.submitted.append(kwargs)
        return "raysubmit_1"


def _jobs(status: str, log: str) -> tuple[Jobs, FakeRay]:
    jobs = Jobs(Settings())
    fake = FakeRay(status, log)
    jobs._client = fake
    return jobs, fake


def test_a_running_job_shows_its_last_stage() -> None:
    jobs, _ = _jobs("RUNNING", "stage: reading the data\nstage: fitting on 8 rows\nnoise\n")
    info = jobs.get("raysubmit_1")
    assert (info.status, info.stage, info.kind, info.model) == (
        "RUNNING",
        "fitting on 8 rows",
        "train",
        "m",
    )
    assert info.result is None
    assert info.start_time == 1_700_000_000.0
    assert info.stages == ["reading the data", "fitting on 8 rows"]  # none lost between polls


def test_waiting_passes_on_every_stage_once_even_those_between_polls() -> None:
    from maas_ray.trainer import Training
    from maas_ray.training.result import JobInfo

    def job(status: str, stages: list[str]) -> JobInfo:
        return JobInfo(id="j", status=status, entrypoint="e", stages=stages)  # type: ignore[arg-type]

    later = [job("RUNNING", ["a", "b", "c"]), job("SUCCEEDED", ["a", "b", "c", "d", "e"])]
    later[-1].result = None
    seen: list[str] = []

    class Fake(Training):
        def job(self, job_id: str) -> JobInfo:
            return later.pop(0)

    with pytest.raises(Exception, match="no result"):
        Fake().wait_job(job("RUNNING", ["a"]), seen.append)
    assert seen == ["a", "b", "c", "d", "e"]


def test_a_finished_job_carries_its_result_and_a_failed_one_its_error() -> None:
    jobs, _ = _jobs("SUCCEEDED", f"stage: done\nMAAS_RESULT {RESULT}\n")
    info = jobs.get("raysubmit_1")
    assert info.done
    assert info.result is not None
    assert (info.result.version, info.result.metrics) == ("3", {"accuracy": 0.9})
    jobs, _ = _jobs("FAILED", "stage: reading the data\nerror: no label column 'x'\n")
    failed = jobs.get("raysubmit_1")
    assert failed.message == "no label column 'x'"


def test_an_unknown_job_is_a_404_and_submissions_carry_metadata() -> None:
    jobs, fake = _jobs("PENDING", "")
    with pytest.raises(NotFound):
        jobs.get("nosuch")
    with pytest.raises(NotFound):
        jobs.logs("nosuch")
    job_id = jobs.submit("train", "m", ["--spec", '{"a": "b c"}'], "r", "key:admin")
    assert job_id == "raysubmit_1"
    sent = fake.submitted[0]
    assert sent["entrypoint"] == 'python -m maas_ray.jobs.train --spec \'{"a": "b c"}\''
    assert sent["metadata"]["maas.submitted_by"] == "key:admin"
    assert sent["entrypoint_num_cpus"] == 0
    # the job's workers skip the serving warm-up imports (serving/warm.py reads it)
    assert sent["runtime_env"] == {"env_vars": {WARM_SWITCH: "0"}}


@pytest.mark.parametrize(("switch", "imports"), [(None, True), ("0", False)])
def test_a_worker_warms_up_unless_its_job_says_not_to(switch: str | None, imports: bool) -> None:
    """What a Ray worker preloading serving/warm.py does, in a real process (not this
    one: importing the module starts its imports)."""
    env = {k: v for k, v in os.environ.items() if k != WARM_SWITCH}
    if switch is not None:
        env[WARM_SWITCH] = switch
    probe = (
        f"import sys, threading, time, maas_ray.serving.warm as w; "
        f"assert w.SWITCH == {WARM_SWITCH!r}; "
        "t = any(x.name == 'maas-warm-imports' for x in threading.enumerate()); "
        "t or time.sleep(0.5); print(t, t or 'skops.io' in sys.modules)"
    )  # a started thread imports in the background; without one, nothing comes later
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == [str(imports), str(imports)]


def test_a_worker_running_serves_build_task_stops_warming_up() -> None:
    """A worker whose main thread runs Serve's build task exits after it: its warm-up
    thread stops before the next import (here, before the first)."""
    probe = (
        "import sys, threading\n"
        "def build_serve_application():\n"
        "    import maas_ray.serving.warm as w\n"
        "    assert w.BUILD_TASK == 'build_serve_application' and w.building()\n"
        "    for t in threading.enumerate():\n"
        "        if t.name == 'maas-warm-imports':\n"
        "            t.join(60)\n"
        "    print('skops.io' in sys.modules, 'mlflow' in sys.modules)\n"
        "build_serve_application()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != WARM_SWITCH}
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
