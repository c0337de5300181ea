"""Fine-tuning with Ray Train on the real cluster and MLflow server: `maas finetune`
of the seeded `tabular` with two workers while a model answers steady load, a
`ray job submit` of the job entrypoint, the management API's route with a worker
process killed mid-run, and the bad inputs refused before any cluster work."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psutil
import pytest
from mlflow.tracking import MlflowClient

from examples.tabular.new_rows import new_rows
from maas_ray import MaaS, Settings
from maas_ray.errors import MaasError
from maas_ray.jobs.submit import WARM_SWITCH
from tests.conftest import FIGURES, ROOT, auth, maas, ray_job_submit


@pytest.fixture(scope="module")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("finetune") / "rows.csv"
    new_rows(rows=300).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def tabular(client: MaaS, seeded: dict[str, Any]) -> str:
    """The seeded tabular's @production version (the parent of every test here)."""
    return client.model("tabular").aliases["production"]


def _versions(client: MaaS, name: str) -> list[str]:
    try:
        return [v.version for v in client.versions(name)]
    except MaasError:
        return []


class Load:
    """Steady predictions to a served model (~15/s) in a thread; counts the answers."""

    def __init__(self, live: Settings, model: str, body: Any) -> None:
        self.url = f"{live.serve_url}/v1/models/{model}/predict"
        self.body, self.headers = body, auth(live)
        self.codes: dict[int, int] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as http:
            while not self._stop.is_set():
                try:
                    code = http.post(self.url, json=self.body, headers=self.headers).status_code
                    self.codes[code] = self.codes.get(code, 0) + 1
                except httpx.HTTPError as exc:
                    self.errors.append(type(exc).__name__)
                time.sleep(0.06)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


EPOCHS = 12


def test_cli_finetune_two_workers_beside_serving_survives_a_killed_worker(
    client: MaaS, live: Settings, env: dict[str, str], rows: Path, tabular: str
) -> None:
    """`maas finetune tabular --workers 2 --epochs 12`: one of its two worker processes
    is killed after the second epoch (and 1 s more); the group resumes from the last checkpoint
    (max_failures=1), logs into the same run and registers the child with lineage;
    the CLI shows the epochs and both versions' held-out scores side by side; and
    meanwhile `sentiment` under steady load answers every request with a 2xx."""
    tracking = MlflowClient(live.mlflow_uri)
    started = time.time()
    with Load(live, "sentiment", {"inputs": ["this book is great"]}) as load:
        cli = subprocess.Popen(
            [str(Path(sys.executable).parent / "maas"), "finetune", "tabular", "--data",
             str(rows), "--workers", "2", "--epochs", str(EPOCHS)],
            env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            run_id = _running_finetune(client, started, cli)
            while len(tracking.get_metric_history(run_id, "train_loss")) < 2:
                assert cli.poll() is None, cli.communicate()
                assert time.time() - started < 300, "no second epoch in 300 s"
                time.sleep(0.2)
            # Ray Train's controller takes in the workers' reports (and their
            # checkpoints) every 0.25 s (training/finetune.py): a kill before it has
            # one restarts from scratch. An epoch here takes ~0.3 s.
            time.sleep(1)
            workers = _train_workers()
            assert len(workers) == 2, workers
            # started for the job: no serving warm-up imports (serving/warm.py)
            assert workers[0].environ().get(WARM_SWITCH) == "0"
            workers[-1].kill()
            stdout, stderr = cli.communicate(timeout=600)
        finally:
            if cli.poll() is None:
                cli.kill()
        wall = time.time() - started
    assert cli.returncode == 0, stdout + stderr
    assert load.codes
    assert set(load.codes) == {200}, (load.codes, load.errors)
    assert not load.errors, load.errors
    assert f"epoch 1/{EPOCHS}" in stderr, stderr
    assert f"epoch {EPOCHS}/{EPOCHS}" in stderr, stderr
    assert f"v{tabular} (parent)" in stdout, stdout
    assert "accuracy" in stdout
    resumed = tracking.get_metric_history(run_id, "resumed_from_epoch")
    assert resumed, "the group did not restart from a checkpoint"
    steps = {m.step for m in tracking.get_metric_history(run_id, "train_loss")}
    assert steps == set(range(1, EPOCHS + 1))
    assert 1 <= resumed[0].value < EPOCHS, resumed  # from a checkpoint, before the end
    child = client.model("tabular").versions[0]
    assert child.version != tabular
    assert child.tags["maas.parent_version"] == tabular
    assert child.tags["maas.run_id"] == run_id
    assert child.tags["maas.data_sha256"]
    assert client.model("tabular").aliases["production"] == tabular  # not promoted
    run = tracking.get_run(run_id)
    assert run.data.params["workers"] == "2"
    assert run.data.metrics["accuracy"] > 0.85, run.data.metrics
    assert "parent_accuracy" in run.data.metrics
    FIGURES.append(
        f"maas finetune tabular, 2 workers, {EPOCHS} epochs, 240 rows, a worker killed after "
        f"epoch 2 (resumed from epoch {int(resumed[0].value)}): {wall:.1f} s end to end; "
        f"held-out accuracy v{tabular} {run.data.metrics['parent_accuracy']:.3f} -> "
        f"v{child.version} {run.data.metrics['accuracy']:.3f}; sentiment answered "
        f"{sum(load.codes.values())} requests meanwhile, all 200"
    )
    frame = pd.read_csv(rows).head(4)
    answers = _predict_version(client, live, child.version, frame.drop(columns=["target"]))
    assert set(answers) <= {"malignant", "benign"}


def _running_finetune(client: MaaS, since: float, cli: subprocess.Popen[str]) -> str:
    """The run id of the fine-tune job the CLI submitted (the newest since ``since``)."""
    while True:
        for job in client.jobs():
            if job.kind == "finetune" and (job.start_time or 0) >= since - 1 and job.run_id:
                return job.run_id
        assert cli.poll() is None, cli.communicate()
        assert time.time() - since < 120, "the CLI submitted no job in 120 s"
        time.sleep(0.5)


def _predict_version(client: MaaS, live: Settings, version: str, X: pd.DataFrame) -> list[Any]:
    """The child's answers, loaded from the registry (digest checked) in this process."""
    import tempfile

    import mlflow.pyfunc
    import numpy as np

    from maas_ray.registry import Registry

    with tempfile.TemporaryDirectory() as tmp:
        local = Registry(live.mlflow_uri).download_verified("tabular", version, tmp)
        model = mlflow.pyfunc.load_model(str(local))
        return list(model.predict(X.to_numpy(dtype=np.float32)))


def test_ray_job_submit_of_the_finetune_entrypoint_registers_with_lineage(
    client: MaaS, live: Settings, rows: Path, tabular: str
) -> None:
    proc = ray_job_submit(
        live,
        "python",
        "-m",
        "maas_ray.jobs.finetune",
        "tabular",
        "--data",
        str(rows),
        "--workers",
        "1",
        "--epochs",
        "1",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = next(x for x in proc.stdout.splitlines() if x.startswith("MAAS_RESULT "))
    result = json.loads(line.removeprefix("MAAS_RESULT "))
    version = client.model("tabular").versions[0]
    assert version.version == result["version"]
    assert version.tags["maas.parent_version"] == tabular == result["parent"]["version"]
    assert version.tags["maas.run_id"] == result["run_id"]


def _train_workers() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if "RayTrainWorker" in " ".join(proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_the_finetune_route_answers_202_and_a_stopped_job_registers_nothing(
    client: MaaS, live: Settings, rows: Path, tabular: str
) -> None:
    """POST /v1/admin/models/tabular/finetune answers 202 with the job (its parent
    pinned); a metrics key may read jobs but not start one; stopping the job leaves
    the registry as it was."""
    url = f"{live.serve_url}/v1/admin/models/tabular/finetune"
    body = {"data": str(rows), "workers": 1, "epochs": 50}
    reader = client.create_key(["metrics"]).key
    refused = httpx.post(url, json=body, headers={"authorization": f"Bearer {reader}"})
    assert refused.status_code == 403
    before = _versions(client, "tabular")
    resp = httpx.post(url, json=body, headers=auth(live), timeout=60)
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert (job["kind"], job["model"]) == ("finetune", "tabular")
    assert f'"from_version":"{tabular}"' in job["entrypoint"]
    shown = httpx.get(
        f"{live.serve_url}/v1/admin/jobs/{job['id']}",
        headers={"authorization": f"Bearer {reader}"},
    )
    assert shown.status_code == 200
    stopped = httpx.post(
        f"{live.serve_url}/v1/admin/jobs/{job['id']}/stop", headers=auth(live), timeout=60
    )
    assert stopped.status_code == 200, stopped.text
    with pytest.raises(MaasError):
        client.wait_job(client.job(job["id"]))
    assert client.job(job["id"]).status == "STOPPED"
    assert _versions(client, "tabular") == before


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--label", "diagnosis"], "no label column 'diagnosis'"),
        (["--workers", "0"], "workers"),
        (["--from-version", "999"], "999"),
        (["--columns", "29"], "takes 30 features per row; the data has 29"),
        (["--empty"], "no rows"),
        (["--model", "sentiment"], "is a sklearn model: maas finetune trains PyTorch"),
        (["--model", "nosuch"], "nosuch"),
    ],
)
def test_cli_bad_finetune_is_one_line_and_changes_nothing(
    client: MaaS,
    env: dict[str, str],
    rows: Path,
    tmp_path: Path,
    tabular: str,
    args: list[str],
    words: str,
) -> None:
    model, data, flags = "tabular", rows, list(args)
    if flags[0] == "--model":
        model, flags = flags[1], []
    elif flags[0] == "--columns":
        data = tmp_path / "narrow.csv"
        pd.read_csv(rows).drop(columns=["worst symmetry"]).to_csv(data, index=False)
        flags = []
    elif flags[0] == "--empty":
        data = tmp_path / "empty.csv"
        pd.read_csv(rows).head(0).to_csv(data, index=False)
        flags = []
    before = {name: _versions(client, name) for name in ("tabular", "sentiment")}
    jobs = len(client.jobs())
    proc = maas(env, "finetune", model, "--data", str(data), *flags, check=False)
    assert proc.returncode in (1, 2), proc.stdout
    assert words in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    assert {name: _versions(client, name) for name in before} == before
    assert len(client.jobs()) == jobs  # refused before any cluster work


def test_the_finetune_route_refuses_bad_input_with_4xx(live: Settings, rows: Path) -> None:
    base = f"{live.serve_url}/v1/admin/models"
    cases = [
        ("nosuch", {"data": str(rows)}, 404),
        ("sentiment", {"data": str(rows)}, 400),
        ("tabular", {"data": str(rows), "workers": 0}, 422),
        ("tabular", {"data": str(rows), "workers": 200}, 400),  # more CPUs than are free
        ("tabular", {"data": str(rows), "name": "digits"}, 400),
        ("tabular", {"data": str(rows), "label": "nosuch"}, 400),
        ("tabular", {"data": "/nonexistent/rows.csv"}, 400),
        ("tabular", {"data": "runs:/0123456789abcdef0123456789abcdef/d.csv"}, 400),
    ]
    for model, body, status in cases:
        resp = httpx.post(f"{base}/{model}/finetune", json=body, headers=auth(live), timeout=60)
        assert resp.status_code == status, (model, body, resp.status_code, resp.text)
        assert resp.json()["error"], resp.text
