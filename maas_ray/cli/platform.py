"""The platform itself: ``up``, ``ray-env``, ``down`` and ``status``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from maas_ray.cli import _output as o
from maas_ray.cli._common import OutputOpt, err, out, reports_errors, sdk, settings, spinner
from maas_ray.cli._output import Output, print_json, print_table
from maas_ray.client import MaaS
from maas_ray.control.status import TrafficReport
from maas_ray.errors import MaasError, VersionNotDeployed


@reports_errors
def up() -> None:
    """Start MLflow, a Ray head and Serve (idempotent) and redeploy stored specs."""
    # MLflow and Ray load here, not at import: `maas --help` and the HTTP commands skip them.
    from maas_ray.control import platform
    from maas_ray.security.auth import AUTH_OFF_WARNING
    from maas_ray.security.ray_token import RAY_AUTH_OFF_WARNING

    config = settings()
    if config.auth == "off":
        err.print(f"[yellow]warning:[/yellow] {AUTH_OFF_WARNING}", highlight=False)
    if config.ray_auth == "off":
        err.print(f"[yellow]warning:[/yellow] {RAY_AUTH_OFF_WARNING}", highlight=False)
    with spinner("starting the platform") as progress:
        report = platform.up(config, progress)
    labels = {"mlflow": "MLflow UI", "ray": "Ray dashboard", "serve": "Serve HTTP"}
    rows = [[labels[p.name], p.url, "started" if p.started else "already running"] for p in report]
    print_table(out, "maas platform", ("part", "url", "state"), rows)
    for note in (n for part in report for n in part.notes):
        err.print(f"[yellow]not restored:[/yellow] {note}", highlight=False, soft_wrap=True)
    out.print(f"Ray address for jobs and handles: {config.ray_address}  (MAAS_HOME={config.home})")
    if config.ray_auth == "on":
        out.print(
            f"Ray token: {config.ray_token_file} (owner-only); before `ray job submit`, "
            '`ray status` or ray.init(), run: eval "$(maas ray-env)"'
        )
    if config.auth == "on":
        out.print(
            f"admin API key: {config.admin_key_file} (owner-only; the CLI and SDK use it "
            "unless MAAS_API_KEY is set). Send it as 'Authorization: Bearer <key>'."
        )


def ray_env() -> None:
    """Print the exports that let `ray job submit`, `ray status` and ray.init() reach
    the cluster: eval "$(maas ray-env)"."""
    import shlex

    from maas_ray.security.ray_token import client_env

    config = settings()
    env = {
        **client_env(config),
        "RAY_ADDRESS": config.ray_address,
        "RAY_API_SERVER_ADDRESS": config.dashboard_url,
    }
    if config.ray_auth == "on":
        typer.echo("unset RAY_AUTH_TOKEN")  # another cluster's token would win over the file
    for key, value in env.items():
        typer.echo(f"export {key}={shlex.quote(value)}")
    if config.ray_auth == "on" and not config.ray_token_file.exists():
        err.print(
            f"[yellow]warning:[/yellow] no Ray token at {config.ray_token_file} yet: `maas up`",
            highlight=False,
        )


def down() -> None:
    """Stop every process `maas up` started."""
    from maas_ray.control import platform

    stopped = platform.down(settings())
    out.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@reports_errors
def status(
    name: Annotated[str | None, typer.Argument(help="One model, with per-version detail.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """One row per deployed model and per cluster node; with NAME, its versions and traffic."""
    client = sdk()
    rows = client.status()
    if name is not None:
        rows = [r for r in rows if r.model == name]
        if not rows:
            client.model(name)  # ModelNotFound when it is not registered at all
            raise VersionNotDeployed(name)
    try:
        nodes = client.cluster()
    except MaasError:
        nodes = []  # a platform older than GET /cluster: the deployments alone
    traffic = _traffic(client, name) if name is not None else None
    if output is Output.json:
        doc: dict[str, Any] = {
            "models": [r.model_dump(mode="json") for r in rows],
            "cluster": [n.model_dump(mode="json") for n in nodes],
        }
        print_json(doc if traffic is None else {**doc, "traffic": traffic.model_dump()})
        return
    print_table(
        out,
        "deployments",
        o.STATUS_COLUMNS,
        [o.status_cells(r) for r in rows],
        "no model is deployed",
    )
    if nodes:
        print_table(out, "cluster", o.NODE_COLUMNS, [o.node_cells(n) for n in nodes])
    for r in rows:
        for note in [*r.message.splitlines(), *r.pending.splitlines()]:
            err.print(f"{r.model}: {note}", markup=False, highlight=False, soft_wrap=True)
        for warning in r.warnings:
            line = Text.assemble(f"{r.model}: ", ("warning:", "yellow"), f" {warning}")
            err.print(line, highlight=False, soft_wrap=True)
    if name is not None:
        serving = o.serving_rows(rows[0], traffic)
        print_table(out, f"{name}: versions serving", o.SERVING_COLUMNS, serving)


def _traffic(client: MaaS, name: str) -> TrafficReport | None:
    """Live traffic of NAME, or None (said on stderr) when the proxy cannot tell."""
    try:
        return client.traffic(name)
    except MaasError as exc:
        err.print(f"live traffic unavailable: {exc.message}", markup=False, highlight=False)
        return None
