"""Serving a model over its life: deploy, promote, rollback, canary, shadow, apply,
history and undeploy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from maas_ray.cli import _output as o
from maas_ray.cli._common import (
    OutputOpt,
    err,
    invalid,
    out,
    reports_errors,
    sdk,
    settings,
    spinner,
)
from maas_ray.cli._output import Output, print_json, print_table
from maas_ray.errors import first_error
from maas_ray.wire import PRODUCTION


@reports_errors
def deploy(
    name: str,
    version: Annotated[
        str | None,
        typer.Option(help="Version to serve (default: what it serves now, else the latest)."),
    ] = None,
    alias: Annotated[
        str | None, typer.Option(help="Serve the version this alias points to.")
    ] = None,
    num_replicas: Annotated[int | None, typer.Option(help="Fixed number of replicas.")] = None,
    min_replicas: Annotated[int | None, typer.Option(help="Autoscaling floor.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Autoscaling ceiling.")] = None,
    num_cpus: Annotated[float, typer.Option(help="CPUs per replica.")] = 0.5,
    num_gpus: Annotated[float, typer.Option(help="GPUs per replica; fractions share a GPU.")] = 0.0,
    max_ongoing_requests: Annotated[int, typer.Option(help="In-flight requests per replica.")] = 64,
    target_ongoing_requests: Annotated[
        float, typer.Option(help="Autoscaling: in-flight requests per replica to aim for.")
    ] = 4.0,
    upscale_delay_s: Annotated[
        float, typer.Option(help="Autoscaling: seconds above target before adding replicas.")
    ] = 10.0,
    downscale_delay_s: Annotated[
        float, typer.Option(help="Autoscaling: seconds below target before removing replicas.")
    ] = 60.0,
    max_batch_size: Annotated[
        int | None,
        typer.Option(help="Dynamic batching: most concurrent requests per model call (1: off)."),
    ] = None,
    batch_wait_ms: Annotated[
        float, typer.Option(help="Dynamic batching: longest wait for a batch to fill, in ms.")
    ] = 5.0,
    shared: Annotated[
        bool, typer.Option("--shared", help="Serve from the shared multiplexed pool.")
    ] = False,
    log_percent: Annotated[
        float | None,
        typer.Option(
            help="Share of predictions in the prediction log, 0-100 (default: "
            "MAAS_MONITOR_PERCENT, 10; 100 while a canary or shadow runs)."
        ),
    ] = None,
    predict_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds a predict may take before it is answered 504 (default: "
            "MAAS_PREDICT_TIMEOUT_S, 30)."
        ),
    ] = None,
    max_queued: Annotated[
        int | None,
        typer.Option(
            help="Requests a replica holds waiting beyond --max-ongoing-requests; more are "
            "answered 503 with Retry-After at once (default: MAAS_MAX_QUEUED_REQUESTS, 128)."
        ),
    ] = None,
    timeout: Annotated[
        int | None,
        typer.Option(
            help="Seconds to wait for the new version (default and most: MAAS_DEPLOY_TIMEOUT_S); "
            "past it, what ran before is put back."
        ),
    ] = None,
) -> None:
    """Serve a version of NAME as a Ray Serve application and wait until it runs."""
    from pydantic import ValidationError

    try:
        with spinner(f"deploying {name}") as progress:
            row = sdk().deploy(
                name,
                version,
                alias=alias,
                num_replicas=num_replicas,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                max_ongoing_requests=max_ongoing_requests,
                target_ongoing_requests=target_ongoing_requests,
                upscale_delay_s=upscale_delay_s,
                downscale_delay_s=downscale_delay_s,
                batching=None
                if max_batch_size is None
                else {
                    "max_batch_size": max_batch_size,
                    "batch_wait_timeout_s": batch_wait_ms / 1000,
                },
                mode="shared" if shared else "dedicated",
                log_percent=log_percent,
                predict_timeout_s=predict_timeout,
                max_queued_requests=max_queued,
                progress=progress,
                timeout_s=timeout,
            )
    except ValidationError as exc:  # the spec's checks, told as the flag that broke them
        invalid(exc)
    out.print(
        f"{row.model} version {row.version} is {row.health} "
        f"({row.replicas_running}/{row.replicas_target} replicas) "
        f"at {settings().serve_url}{row.route}"
    )
    for warning in row.warnings:  # e.g. an autoscaling maximum beyond what fits
        err.print(Text.assemble(("warning:", "yellow"), f" {warning}"), soft_wrap=True)


@reports_errors
def promote(
    name: str,
    version: str,
    alias: Annotated[str, typer.Option(help="The alias to move.")] = PRODUCTION,
) -> None:
    """Point ALIAS at VERSION; the deployment that follows it switches with no dropped request."""
    with spinner(f"promoting {name} v{version} to @{alias}") as progress:
        row = sdk().promote(name, version, alias, progress)
    _switched(name, alias, row)


@reports_errors
def rollback(
    name: str,
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = PRODUCTION,
) -> None:
    """End a canary or shadow; else move ALIAS back to its previous version."""
    with spinner(f"rolling back {name}") as progress:
        row = sdk().rollback(name, alias, progress)
    _switched(name, alias, row)


def _switched(name: str, alias: str, row: Any) -> None:
    if row is None:
        version = sdk().model(name).aliases.get(alias)
        out.print(f"@{alias} of {name} -> v{version} (not deployed; alias moved only)")
    else:
        out.print(f"{name}: {row.traffic}, {row.health}")


@reports_errors
def canary(
    name: str,
    version: Annotated[str, typer.Option(help="The challenger version.")],
    percent: Annotated[float, typer.Option(help="Share of requests it answers, 0-100.")],
    sticky_header: Annotated[
        str | None, typer.Option(help="Header whose value pins a caller to one version.")
    ] = None,
) -> None:
    """Send PERCENT of NAME's traffic to VERSION; `promote` or `rollback` ends it."""
    _challenger(name, "canary", version=version, percent=percent, sticky_header=sticky_header)


@reports_errors
def shadow(
    name: str,
    version: Annotated[str, typer.Option(help="The challenger version.")],
    percent: Annotated[float, typer.Option(help="Share of requests mirrored, 0-100.")] = 100,
) -> None:
    """Mirror NAME's traffic to VERSION; callers get only the primary's answer."""
    _challenger(name, "shadow", version=version, percent=percent)


def _challenger(name: str, kind: str, **fields: Any) -> None:
    from pydantic import ValidationError

    client = sdk()
    try:
        with spinner(f"{kind} of {name} v{fields['version']}") as progress:
            start = client.canary if kind == "canary" else client.shadow
            row = start(name, progress=progress, **fields)
    except ValidationError as exc:
        invalid(exc)
    out.print(f"{name}: {row.traffic}, {row.health}")


@reports_errors
def apply_file(
    file: Annotated[Path, typer.Argument(help="A YAML file of kind MaasDeployments.")],
) -> None:
    """Apply the deployment specs in FILE; the same file twice changes nothing."""
    import yaml
    from pydantic import ValidationError

    try:
        document = yaml.safe_load(file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/red] cannot read {file}: {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    try:
        with spinner(f"applying {file.name}") as progress:
            result = sdk().apply(document if isinstance(document, dict) else {}, progress)
    except ValidationError as exc:  # told as the place in FILE, not as a flag
        where, text = first_error(exc, "file")
        err.print(f"[red]error:[/red] {file}: {where}: {text}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    print_table(out, f"applied {file}", ("model", "result"), [list(r) for r in result.items()])


@reports_errors
def history(name: str, output: OutputOpt = Output.table) -> None:
    """Every alias move and deploy action of NAME: time, actor, from/to version."""
    events = sdk().history(name)
    if output is Output.json:
        print_json([e.model_dump(mode="json") for e in events])
    else:
        rows = [o.history_cells(e) for e in events]
        print_table(out, f"{name}: history", o.HISTORY_COLUMNS, rows, f"no history for {name} yet")


@reports_errors
def undeploy(name: str) -> None:
    """Stop serving NAME; its versions stay registered."""
    with spinner(f"undeploying {name}") as progress:
        sdk().undeploy(name, progress)
    out.print(f"{name} undeployed")
