"""The ``maas`` command: a thin typer layer over the SDK and the control plane."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from maas_ray.client import MaaS, wrap_inputs
from maas_ray.control import platform
from maas_ray.errors import MaasError
from maas_ray.settings import Settings

app = typer.Typer(help="maas_ray: serve MLflow models on Ray.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

out = Console()
err = Console(stderr=True)
_overrides: dict[str, Any] = {}


@app.callback()
def _global(
    home: Annotated[Path | None, typer.Option(help="MAAS_HOME folder.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address of every service.")] = None,
    mlflow_port: Annotated[int | None, typer.Option(help="MLflow server port.")] = None,
    serve_port: Annotated[int | None, typer.Option(help="Serve HTTP port.")] = None,
    dashboard_port: Annotated[int | None, typer.Option(help="Ray dashboard port.")] = None,
    ray_port: Annotated[int | None, typer.Option(help="Ray GCS port.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log to stderr.")] = False,
) -> None:
    """Global options override MAAS_* environment variables."""
    given = {
        "home": home,
        "host": host,
        "mlflow_port": mlflow_port,
        "serve_port": serve_port,
        "dashboard_port": dashboard_port,
        "ray_port": ray_port,
    }
    _overrides.update({k: v for k, v in given.items() if v is not None})
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)


def _settings() -> Settings:
    return Settings(**_overrides)


def _sdk() -> MaaS:
    return MaaS(_settings())


@contextmanager
def _progress(title: str) -> Iterator[Callable[[str], None]]:
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as bar:
        task = bar.add_task(title)
        yield lambda text: bar.update(task, description=f"{title}: {text}")


def _fail(exc: MaasError) -> None:
    err.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


def _tags(pairs: list[str] | None) -> dict[str, str]:
    tags = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"got '{pair}' for --tag: use KEY=VALUE")
        tags[key] = value
    return tags


@app.command()
def up() -> None:
    """Start MLflow, a Ray head and Serve (idempotent) and redeploy stored specs."""
    settings = _settings()
    try:
        with _progress("starting the platform") as progress:
            report = platform.up(settings, progress)
    except MaasError as exc:
        _fail(exc)
    table = Table(title="maas platform")
    for col in ("part", "url", "state"):
        table.add_column(col)
    labels = {"mlflow": "MLflow UI", "ray": "Ray dashboard", "serve": "Serve HTTP"}
    for part in report:
        table.add_row(labels[part.name], part.url, "started" if part.started else "already running")
    out.print(table)
    out.print(
        f"Ray address for jobs and handles: {settings.ray_address}  (MAAS_HOME={settings.home})"
    )


@app.command()
def down() -> None:
    """Stop every process `maas up` started."""
    stopped = platform.down(_settings())
    out.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status() -> None:
    """One row per deployed model."""
    try:
        rows = _sdk().status()
    except MaasError as exc:
        _fail(exc)
    table = Table(title="deployments")
    for col in ("model", "version", "replicas", "CPUs", "GPUs", "health", "route"):
        table.add_column(col)
    for r in rows:
        version = (r.version or "-") + (f" (@{r.alias})" if r.alias else "")
        replicas = f"{r.replicas_running}/{r.replicas_target}"
        if r.replicas_spec != str(r.replicas_target):
            replicas += f" ({r.replicas_spec})"
        color = "green" if r.health == "RUNNING" else "yellow"
        table.add_row(
            r.model,
            version,
            replicas,
            f"{r.num_cpus:g}",
            f"{r.num_gpus:g}",
            f"[{color}]{r.health}[/{color}]",
            r.route,
        )
    out.print(table if rows else "no model is deployed")
    for r in rows:
        if r.message:
            err.print(f"{r.model}: {r.message}", highlight=False)


@models_app.command("list")
def models_list() -> None:
    """Registered models with their latest version and aliases."""
    try:
        models = _sdk().models()
    except MaasError as exc:
        _fail(exc)
    table = Table(title="registered models")
    for col in ("name", "latest", "aliases", "description"):
        table.add_column(col)
    for m in models:
        aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(m.aliases.items()))
        table.add_row(m.name, m.latest_version or "-", aliases, m.description)
    out.print(table)


@models_app.command("show")
def models_show(name: str) -> None:
    """Every version of one model: signature, digest, tags, description."""
    try:
        model = _sdk().model(name)
    except MaasError as exc:
        _fail(exc)
    table = Table(title=f"{model.name}")
    for col in ("version", "created", "aliases", "signature", "sha256", "tags", "description"):
        table.add_column(col, overflow="fold")
    for v in model.versions:
        created = datetime.fromtimestamp(v.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            v.version,
            created,
            ", ".join(v.aliases),
            _signature_text(v.signature),
            (v.sha256 or "-")[:16],
            ", ".join(f"{k}={x}" for k, x in sorted(v.tags.items())),
            v.description,
        )
    out.print(table)


def _signature_text(signature: dict[str, Any] | None) -> str:
    if not signature:
        return "-"
    parts = []
    for key in ("inputs", "outputs"):
        raw = signature.get(key)
        specs = json.loads(raw) if isinstance(raw, str) else raw or []
        text = ", ".join(
            f"{s.get('name', '')}{':' if s.get('name') else ''}"
            f"{s.get('type')}{'' if 'tensor-spec' not in s else ''}"
            + (
                f"{s['tensor-spec']['dtype']}{tuple(s['tensor-spec']['shape'])}"
                if "tensor-spec" in s
                else ""
            )
            for s in specs
        )
        parts.append(f"{key}: {text or '-'}")
    return "\n".join(parts)


@app.command()
def register(
    name: str,
    model_uri: Annotated[
        str, typer.Option("--model-uri", help="runs:/, models:/ or a local MLflow model folder.")
    ],
    description: Annotated[str | None, typer.Option(help="Version description.")] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="KEY=VALUE version tag (repeatable).")
    ] = None,
) -> None:
    """Register an existing MLflow model as a new version of NAME."""
    try:
        with _progress(f"registering {name}"):
            v = _sdk().register_uri(name, model_uri, description=description, tags=_tags(tag))
    except MaasError as exc:
        _fail(exc)
    out.print(f"registered {v.name} version {v.version} (sha256 {v.sha256})")


@app.command()
def deploy(
    name: str,
    version: Annotated[str | None, typer.Option(help="Version to serve (default: latest).")] = None,
    alias: Annotated[
        str | None, typer.Option(help="Serve the version this alias points to.")
    ] = None,
    num_replicas: Annotated[int | None, typer.Option(help="Fixed number of replicas.")] = None,
    min_replicas: Annotated[int | None, typer.Option(help="Autoscaling floor.")] = None,
    max_replicas: Annotated[int | None, typer.Option(help="Autoscaling ceiling.")] = None,
    num_cpus: Annotated[float, typer.Option(help="CPUs per replica.")] = 0.5,
    num_gpus: Annotated[float, typer.Option(help="GPUs per replica; fractions share a GPU.")] = 0.0,
    max_ongoing_requests: Annotated[int, typer.Option(help="In-flight requests per replica.")] = 64,
) -> None:
    """Serve a version of NAME as a Ray Serve application and wait until it runs."""
    from pydantic import ValidationError

    try:
        with _progress(f"deploying {name}") as progress:
            row = _sdk().deploy(
                name,
                version,
                alias=alias,
                num_replicas=num_replicas,
                min_replicas=min_replicas,
                max_replicas=max_replicas,
                num_cpus=num_cpus,
                num_gpus=num_gpus,
                max_ongoing_requests=max_ongoing_requests,
                progress=progress,
            )
    except MaasError as exc:
        _fail(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        text = str(first["msg"]).removeprefix("Value error, ")
        if first["loc"]:
            text = f"--{str(first['loc'][0]).replace('_', '-')}: got {first['input']!r}, {text}"
        err.print(f"[red]error:[/red] {text}", highlight=False)
        raise typer.Exit(2) from None
    out.print(
        f"{row.model} version {row.version} is {row.health} "
        f"({row.replicas_running}/{row.replicas_target} replicas) "
        f"at {_settings().serve_url}{row.route}"
    )


@app.command()
def undeploy(name: str) -> None:
    """Stop serving NAME; its versions stay registered."""
    try:
        with _progress(f"undeploying {name}") as progress:
            _sdk().undeploy(name, progress)
    except MaasError as exc:
        _fail(exc)
    out.print(f"{name} undeployed")


@app.command()
def predict(
    name: str,
    json_: Annotated[
        str | None, typer.Option("--json", help="A scoring payload, or a JSON list of inputs.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="A CSV file (header row = column names) or a .json file.")
    ] = None,
    version: Annotated[str | None, typer.Option(help="Ask this version explicitly.")] = None,
) -> None:
    """Send one prediction request over HTTP and print the JSON answer."""
    if (json_ is None) == (file is None):
        raise typer.BadParameter("give exactly one of --json or --file")
    if file is not None and file.suffix.lower() == ".csv":
        body, ctype = file.read_bytes(), "text/csv"
    else:
        text = json_ if json_ is not None else file.read_text()  # type: ignore[union-attr]
        try:
            payload = wrap_inputs(json.loads(text))
        except json.JSONDecodeError as exc:
            raise typer.BadParameter(f"not valid JSON: {exc}") from exc
        body, ctype = json.dumps(payload).encode(), "application/json"
    try:
        answer = _sdk().predict_raw(name, body, ctype, version)
    except MaasError as exc:
        _fail(exc)
    out.print_json(data={"version": answer.pop("version"), **answer})


def main() -> None:
    """Console-script entry point."""
    app()
