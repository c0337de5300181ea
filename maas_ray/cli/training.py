"""Training on the cluster: ``train --config FILE.yaml``, ``finetune NAME --data FILE``,
and ``jobs list|show|logs|stop``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from maas_ray.cli import _output as o
from maas_ray.cli._common import OutputOpt, err, out, reports_errors, sdk
from maas_ray.cli._output import Output, print_json, print_table
from maas_ray.errors import BadRequest
from maas_ray.training.result import JobInfo, TrainResult

jobs_app = typer.Typer(help="Ray jobs on the platform's cluster (trainings).", no_args_is_help=True)
JOB_COLUMNS = ("id", "kind", "model", "status", "stage", "started (UTC)", "submitted by")


def _document(path: Path, kind: str = "MaasTraining") -> dict[str, Any]:
    import yaml

    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise BadRequest(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise BadRequest(f"{path} is not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise BadRequest(f"{path}: expected a YAML document with 'kind: {kind}'")
    return doc


PromoteOpt = Annotated[
    str | None,
    typer.Option(help="Promote only if this held-out metric beats @production's."),
]
DetachOpt = Annotated[
    bool, typer.Option("--detach", help="Submit the job, print its id, do not wait.")
]


@reports_errors
def train(
    config: Annotated[Path, typer.Option("--config", "-f", help="A kind: MaasTraining YAML file.")],
    promote_if_better: PromoteOpt = None,
    detach: DetachOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Train the file's pipeline on its data as a Ray job and register a new version.

    The data and the pipeline are checked here first; the fit runs on the cluster.
    The data path in the file is relative to the file. Not promoted unless
    --promote-if-better (or the file's promote_if_better) says so and it wins.
    """
    _run_file(config, "MaasTraining", "training", promote_if_better, detach, output)


@reports_errors
def tune(
    config: Annotated[Path, typer.Option("--config", "-f", help="A kind: MaasTuning YAML file.")],
    promote_if_better: PromoteOpt = None,
    detach: DetachOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Search the file's hyperparameter space with Ray Tune; register the best.

    A kind: MaasTuning file is a training file plus `search` (scikit-learn parameter
    names, each with a list of values or a uniform, loguniform or randint range),
    `metric` and `trials`. Each trial is a child MLflow run; as many run at once as
    the CPUs beside serving hold. The best is fit, scored and registered as `maas
    train` does; not promoted unless it wins with --promote-if-better.
    """
    _run_file(config, "MaasTuning", "tuning", promote_if_better, detach, output)


def _run_file(
    config: Path,
    kind: str,
    verb: str,
    promote_if_better: str | None,
    detach: bool,
    output: Output,
) -> None:
    doc = _document(config, kind)
    fields = {k: v for k, v in doc.items() if k not in ("data", "pipeline")}
    if promote_if_better is not None:
        fields["promote_if_better"] = promote_if_better
    if "data" not in doc or "pipeline" not in doc:
        raise BadRequest(f"{config}: give 'data' and 'pipeline'")
    base = config.resolve().parent
    with step_progress(f"{verb} {fields.get('name', '?')}", None, _TRIAL) as say:
        answer = sdk().train_spec(
            base, doc["data"], doc["pipeline"], fields, wait=not detach, progress=say
        )
    if isinstance(answer, JobInfo):
        err.print(f"job {answer.id} submitted; `maas jobs show {answer.id}` follows it")
        print(answer.id)  # plain stdout, last line: `JOB=$(maas train ... --detach)`
        return
    _print_result(answer, output)


@reports_errors
def finetune(
    name: Annotated[str, typer.Argument(help="The registered PyTorch model.")],
    data: Annotated[
        Path, typer.Option("--data", help="CSV or Parquet: the label column and the features.")
    ],
    from_version: Annotated[
        str | None, typer.Option(help="The parent version (default: @production's).")
    ] = None,
    label: Annotated[str, typer.Option(help="The label column.")] = "target",
    workers: Annotated[int, typer.Option(help="Ray Train workers (DDP).")] = 1,
    num_gpus_per_worker: Annotated[
        float, typer.Option(help="GPUs per worker (>0 trains with NCCL).")
    ] = 0,
    cpus_per_worker: Annotated[float, typer.Option(help="CPUs each worker declares.")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Passes over the training rows.")] = 2,
    lr: Annotated[float, typer.Option(help="Adam's learning rate.")] = 1e-3,
    batch_size: Annotated[int, typer.Option(help="Rows per step per worker.")] = 32,
    promote_if_better: PromoteOpt = None,
    detach: DetachOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Train a registered PyTorch version further with Ray Train; register the child.

    The parent (the platform's PyTorch packaging, or mlflow.pytorch) and the data are
    checked here first; the workers run on the cluster, a checkpoint each epoch.
    Shows each epoch, then the held-out metrics of parent and child side by side.
    Not promoted unless --promote-if-better says so and the child wins.
    """
    with step_progress(f"fine-tuning {name}", epochs, _EPOCH) as say:
        answer = sdk().finetune(
            name,
            data,
            from_version=from_version,
            label=label,
            workers=workers,
            num_gpus_per_worker=num_gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
            epochs=epochs,
            lr=lr,
            batch_size=batch_size,
            promote_if_better=promote_if_better,
            wait=not detach,
            progress=say,
        )
    if isinstance(answer, JobInfo):
        err.print(f"job {answer.id} submitted; `maas jobs show {answer.id}` follows it")
        print(answer.id)
        return
    _print_result(answer, output)


@reports_errors
def retrain(
    name: Annotated[str, typer.Argument(help="The deployed model.")],
    min_labels: Annotated[
        int | None, typer.Option(help="Labelled predictions needed (spec's retrain, else 200).")
    ] = None,
    canary_percent: Annotated[
        float | None, typer.Option(help="Share the retrained version answers (else 10).")
    ] = None,
    window_s: Annotated[
        float | None, typer.Option(help="How far back labels are taken, in seconds.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Fine-tune epochs (PyTorch).")] = None,
    show: Annotated[
        bool, typer.Option("--show", help="Show the last retrain of NAME; start nothing.")
    ] = False,
    detach: DetachOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Retrain NAME's serving version on its labelled predictions; canary the result.

    The predictions of the window that have labels (maas feedback) are the data: a
    scikit-learn version's estimator is fit again on them, a PyTorch version is
    fine-tuned, as a Ray job. The new version then answers --canary-percent of the
    requests and is promoted only if it beats production on the labels that follow
    (or the canary is ended). Every step is in `maas history NAME` and `maas audit`.
    A deployment spec's `retrain: {when: degraded}` does the same by itself.
    """
    client = sdk()
    if show:
        state = client.retraining(name)
    else:
        with step_progress(f"retraining {name}", None, _EPOCH) as say:
            state = client.retrain(
                name,
                min_labels=min_labels,
                canary_percent=canary_percent,
                window_s=window_s,
                epochs=epochs,
                wait=not detach,
                progress=say,
            )
    if output is Output.json:
        print_json(state.model_dump())
        return
    rows: list[list[o.Cell]] = [
        ["state", state.state],
        ["reason", state.reason],
        ["from version", state.from_version],
        ["kind", f"{state.kind} on {state.rows} labelled predictions"],
        ["job", state.job_id or "-"],
        ["run", state.run_id or "-"],
        ["new version", state.version or "-"],
        ["canary", f"{state.canary_percent:g}%"],
        ["decided on", f"{state.metric}, {state.min_labels} labels per arm"],
        ["started (UTC)", o.when(state.started_at)],
        ["message", state.message or "-"],
    ]
    print_table(out, f"retrain of {name}", ["", ""], rows)
    if state.state == "failed" and not show:
        raise typer.Exit(1)


@contextmanager
def step_progress(
    title: str, total: int | None, step: re.Pattern[str]
) -> Iterator[Callable[[str], None]]:
    """A bar of the steps done (a job's ``epoch N/E`` or ``trial N/T`` stages), each
    step's line kept above it; other stages update its text."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(title, total=total)

        def say(text: str) -> None:
            match = step.match(text)
            if match:
                bar.update(task, completed=int(match.group(1)), total=int(match.group(2)))
                bar.console.print(f"  {text}", highlight=False)
            bar.update(task, description=f"{title}: {text}"[:100])

        yield say


_EPOCH = re.compile(r"^epoch (\d+)/(\d+)")
_TRIAL = re.compile(r"^trial (\d+)/(\d+)")


def _print_result(result: TrainResult, output: Output) -> None:
    if output is Output.json:
        print_json(result.model_dump())
        return
    title = f"{result.model} version {result.version} (run {result.run_id}, {result.task})"
    columns = ["metric", f"v{result.version} (new)"]
    others = []  # the parent's and @production's scores on the same rows, beside it
    if result.parent:
        others.append((f"v{result.parent['version']} (parent)", result.parent))
    old = result.production or {}
    if old and (not result.parent or old["version"] != result.parent["version"]):
        others.append((f"v{old['version']} (@production)", old))
    columns += [header for header, _ in others]
    rows = []
    for metric, value in result.metrics.items():
        row: list[o.Cell] = [metric, f"{value:.4f}"]
        for _, other in others:
            theirs = other["metrics"].get(metric)
            row.append("-" if theirs is None else f"{theirs:.4f}")
        rows.append(row)
    print_table(out, title, columns, rows)
    err.print(
        f"held out {result.n_test} of {result.n_train + result.n_test} rows; "
        f"data sha256 {result.data_sha256[:16]}",
        highlight=False,
    )
    if result.figures.get("trials"):
        err.print(f"best of {result.figures['trials']:g} trials (each a child run)")
    if result.figures.get("train_seconds"):
        f = result.figures
        err.print(
            f"Ray Train run {f['train_seconds']:.1f} s on {f.get('workers', 1):g} worker(s) "
            f"(workers started, then {f.get('train_samples_per_s', 0):,.0f} samples/s)",
            highlight=False,
        )
    if result.promotion:
        err.print(result.promotion, highlight=False)


def _cells(job: JobInfo) -> list[o.Cell]:
    started = o.when(job.start_time) if job.start_time else "-"
    return [
        job.id,
        job.kind or "-",
        job.model or "-",
        job.status,
        job.stage or "-",
        started,
        job.submitted_by or "-",
    ]


@jobs_app.command("list")
@reports_errors
def jobs_list(output: OutputOpt = Output.table) -> None:
    """Jobs on the cluster, newest first."""
    jobs = sdk().jobs()
    if output is Output.json:
        print_json([j.model_dump() for j in jobs])
        return
    print_table(out, "jobs", JOB_COLUMNS, [_cells(j) for j in jobs], empty="no jobs")


@jobs_app.command("show")
@reports_errors
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job's id (see `maas jobs list`).")],
    output: OutputOpt = Output.table,
) -> None:
    """One job: status, stage, message, and a finished training's result."""
    job = sdk().job(job_id)
    if output is Output.json:
        print_json(job.model_dump())
        return
    print_table(out, "job", JOB_COLUMNS, [_cells(job)])
    if job.message:
        err.print(job.message, highlight=False)
    if job.result is not None:
        _print_result(job.result, Output.table)


@jobs_app.command("logs")
@reports_errors
def jobs_logs(
    job_id: Annotated[str, typer.Argument(help="The job's id (see `maas jobs list`).")],
) -> None:
    """A job's log so far."""
    print(sdk().job_logs(job_id), end="")


@jobs_app.command("stop")
@reports_errors
def jobs_stop(
    job_id: Annotated[str, typer.Argument(help="The job's id (see `maas jobs list`).")],
) -> None:
    """Stop a job (what it registered before it stopped stays registered)."""
    job = sdk().stop_job(job_id)
    err.print(f"job {job.id}: {job.status}", highlight=False)
