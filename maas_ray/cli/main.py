"""The ``maas`` command: a thin typer layer over the SDK and the control plane."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from maas_ray.cli import _output as o
from maas_ray.cli._output import Output, print_json, print_table
from maas_ray.client import MaaS, wrap_inputs
from maas_ray.errors import MaasError, VersionNotDeployed
from maas_ray.settings import Settings
from maas_ray.wire import PRODUCTION

# MLflow and Ray load only in the commands that need them (`up`, `down`, `register`):
# the others are HTTP calls, and importing MLflow alone takes ~2 s.
app = typer.Typer(help="maas_ray: serve MLflow models on Ray.", no_args_is_help=True)
models_app = typer.Typer(help="Registered models.", no_args_is_help=True)
app.add_typer(models_app, name="models")
keys_app = typer.Typer(help="API keys (scope admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

out = Console()
err = Console(stderr=True)
_overrides: dict[str, Any] = {}
OutputOpt = Annotated[
    Output, typer.Option("--output", "-o", help="table, or json: one JSON document on stdout.")
]


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


def _fail(exc: MaasError) -> NoReturn:
    err.print(f"[red]error:[/red] {exc.message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(1)


def _invalid(exc: Any) -> NoReturn:
    """A pydantic ValidationError as a one-line message naming the flag; exit 2."""
    first = exc.errors()[0]
    text = str(first["msg"]).removeprefix("Value error, ")
    loc, given = tuple(first["loc"]), first["input"]
    if loc == ("batching", "batch_wait_timeout_s"):  # the flag is in milliseconds
        loc, given = ("batch_wait_ms",), given * 1000
        text = text.replace("less than or equal to 1", "at most 1000 (ms)")
    elif loc[:1] == ("batching",) and len(loc) > 1:
        loc = loc[1:]
    if loc:
        text = f"--{str(loc[0]).replace('_', '-')}: got {given!r}, {text}"
    err.print(f"[red]error:[/red] {text}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


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
    from maas_ray.control import platform
    from maas_ray.security.auth import AUTH_OFF_WARNING
    from maas_ray.security.ray_token import RAY_AUTH_OFF_WARNING

    settings = _settings()
    if settings.auth == "off":
        err.print(f"[yellow]warning:[/yellow] {AUTH_OFF_WARNING}", highlight=False)
    if settings.ray_auth == "off":
        err.print(f"[yellow]warning:[/yellow] {RAY_AUTH_OFF_WARNING}", highlight=False)
    try:
        with _progress("starting the platform") as progress:
            report = platform.up(settings, progress)
    except MaasError as exc:
        _fail(exc)
    labels = {"mlflow": "MLflow UI", "ray": "Ray dashboard", "serve": "Serve HTTP"}
    rows = [[labels[p.name], p.url, "started" if p.started else "already running"] for p in report]
    print_table(out, "maas platform", ("part", "url", "state"), rows)
    for note in (n for part in report for n in part.notes):
        err.print(f"[yellow]not restored:[/yellow] {note}", highlight=False, soft_wrap=True)
    out.print(
        f"Ray address for jobs and handles: {settings.ray_address}  (MAAS_HOME={settings.home})"
    )
    if settings.ray_auth == "on":
        out.print(
            f"Ray token: {settings.ray_token_file} (owner-only); before `ray job submit`, "
            '`ray status` or ray.init(), run: eval "$(maas ray-env)"'
        )
    if settings.auth == "on":
        out.print(
            f"admin API key: {settings.admin_key_file} (owner-only; the CLI and SDK use it "
            "unless MAAS_API_KEY is set). Send it as 'Authorization: Bearer <key>'."
        )


@app.command("ray-env")
def ray_env() -> None:
    """Print the exports that let `ray job submit`, `ray status` and ray.init() reach
    the cluster: eval "$(maas ray-env)"."""
    import shlex

    from maas_ray.security.ray_token import client_env

    settings = _settings()
    env = {
        **client_env(settings),
        "RAY_ADDRESS": settings.ray_address,
        "RAY_API_SERVER_ADDRESS": settings.dashboard_url,
    }
    if settings.ray_auth == "on":
        typer.echo("unset RAY_AUTH_TOKEN")  # another cluster's token would win over the file
    for key, value in env.items():
        typer.echo(f"export {key}={shlex.quote(value)}")
    if settings.ray_auth == "on" and not settings.ray_token_file.exists():
        err.print(
            f"[yellow]warning:[/yellow] no Ray token at {settings.ray_token_file} yet: `maas up`",
            highlight=False,
        )


@app.command()
def down() -> None:
    """Stop every process `maas up` started."""
    from maas_ray.control import platform

    stopped = platform.down(_settings())
    out.print("stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


@app.command()
def status(
    name: Annotated[str | None, typer.Argument(help="One model, with per-version detail.")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """One row per deployed model and per cluster node; with NAME, its versions and traffic."""
    sdk = _sdk()
    try:
        rows = sdk.status()
        if name is not None:
            rows = [r for r in rows if r.model == name]
            if not rows:
                sdk.model(name)  # ModelNotFound when it is not registered at all
                raise VersionNotDeployed(name)
    except MaasError as exc:
        _fail(exc)
    try:
        nodes = sdk.cluster()
    except MaasError:
        nodes = []  # a platform older than GET /cluster: the deployments alone
    traffic = _traffic(sdk, name) if name is not None else None
    if output is Output.json:
        doc: dict[str, Any] = {
            "models": [r.model_dump(mode="json") for r in rows],
            "cluster": [n.model_dump(mode="json") for n in nodes],
        }
        print_json(doc if traffic is None else {**doc, "traffic": traffic})
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
        serving = o.serving_rows(rows[0], traffic or {})
        print_table(out, f"{name}: versions serving", o.SERVING_COLUMNS, serving)


def _traffic(sdk: MaaS, name: str) -> dict[str, Any] | None:
    """Live traffic of NAME, or None (said on stderr) when the proxy cannot tell."""
    try:
        return sdk.traffic(name)
    except MaasError as exc:
        err.print(f"live traffic unavailable: {exc.message}", markup=False, highlight=False)
        return None


@models_app.command("list")
def models_list(output: OutputOpt = Output.table) -> None:
    """Registered models with their latest version and aliases."""
    try:
        models = _sdk().models()
    except MaasError as exc:
        _fail(exc)
    if output is Output.json:
        print_json([m.model_dump(mode="json") for m in models])
    else:
        print_table(out, "registered models", o.MODEL_COLUMNS, [o.model_cells(m) for m in models])


@models_app.command("show")
def models_show(name: str, output: OutputOpt = Output.table) -> None:
    """Every version of one model: signature, digest, tags, description."""
    try:
        model = _sdk().model(name)
    except MaasError as exc:
        _fail(exc)
    if output is Output.json:
        print_json(model.model_dump(mode="json"))
    else:
        rows = [o.version_cells(v) for v in model.versions]
        print_table(out, model.name, o.VERSION_COLUMNS, rows)


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
                progress=progress,
                timeout_s=timeout,
            )
    except MaasError as exc:
        _fail(exc)
    except ValidationError as exc:
        _invalid(exc)
    out.print(
        f"{row.model} version {row.version} is {row.health} "
        f"({row.replicas_running}/{row.replicas_target} replicas) "
        f"at {_settings().serve_url}{row.route}"
    )
    for warning in row.warnings:  # e.g. an autoscaling maximum beyond what fits
        err.print(Text.assemble(("warning:", "yellow"), f" {warning}"), soft_wrap=True)


@app.command()
def promote(
    name: str,
    version: str,
    alias: Annotated[str, typer.Option(help="The alias to move.")] = PRODUCTION,
) -> None:
    """Point ALIAS at VERSION; the deployment that follows it switches with no dropped request."""
    try:
        with _progress(f"promoting {name} v{version} to @{alias}") as progress:
            row = _sdk().promote(name, version, alias, progress)
    except MaasError as exc:
        _fail(exc)
    _switched(name, alias, row)


@app.command()
def rollback(
    name: str,
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = PRODUCTION,
) -> None:
    """End a canary or shadow; else move ALIAS back to its previous version."""
    try:
        with _progress(f"rolling back {name}") as progress:
            row = _sdk().rollback(name, alias, progress)
    except MaasError as exc:
        _fail(exc)
    _switched(name, alias, row)


def _switched(name: str, alias: str, row: Any) -> None:
    if row is None:
        version = _sdk().model(name).aliases.get(alias)
        out.print(f"@{alias} of {name} -> v{version} (not deployed; alias moved only)")
    else:
        out.print(f"{name}: {row.traffic}, {row.health}")


@app.command()
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


@app.command()
def shadow(
    name: str,
    version: Annotated[str, typer.Option(help="The challenger version.")],
    percent: Annotated[float, typer.Option(help="Share of requests mirrored, 0-100.")] = 100,
) -> None:
    """Mirror NAME's traffic to VERSION; callers get only the primary's answer."""
    _challenger(name, "shadow", version=version, percent=percent)


def _challenger(name: str, kind: str, **fields: Any) -> None:
    from pydantic import ValidationError

    sdk = _sdk()
    try:
        with _progress(f"{kind} of {name} v{fields['version']}") as progress:
            start = sdk.canary if kind == "canary" else sdk.shadow
            row = start(name, progress=progress, **fields)
    except MaasError as exc:
        _fail(exc)
    except ValidationError as exc:
        _invalid(exc)
    out.print(f"{name}: {row.traffic}, {row.health}")


@app.command(name="apply")
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
        with _progress(f"applying {file.name}") as progress:
            result = _sdk().apply(document if isinstance(document, dict) else {}, progress)
    except MaasError as exc:
        _fail(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "file"
        text = str(first["msg"]).removeprefix("Value error, ")
        err.print(f"[red]error:[/red] {file}: {where}: {text}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    print_table(out, f"applied {file}", ("model", "result"), [list(r) for r in result.items()])


@app.command()
def history(name: str, output: OutputOpt = Output.table) -> None:
    """Every alias move and deploy action of NAME: time, actor, from/to version."""
    try:
        events = _sdk().history(name)
    except MaasError as exc:
        _fail(exc)
    if output is Output.json:
        print_json([e.model_dump(mode="json") for e in events])
    else:
        rows = [o.history_cells(e) for e in events]
        print_table(out, f"{name}: history", o.HISTORY_COLUMNS, rows, f"no history for {name} yet")


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


@keys_app.command("create")
def keys_create(
    scope: Annotated[
        list[str],
        typer.Option(
            help="predict:NAME, predict:*, feedback:NAME, register, deploy, train, metrics "
            "or admin (repeatable)."
        ),
    ],
    name: Annotated[str | None, typer.Option(help="A name for lists and the audit log.")] = None,
    expires_in: Annotated[
        float | None, typer.Option(help="Days until the key stops working.")
    ] = None,
) -> None:
    """Create an API key; it is printed once, as the last line (only its hash is kept)."""
    try:
        made = _sdk().create_key(scope, name, expires_in)
    except MaasError as exc:
        _fail(exc)
    expires = o.when(made["expires_at"]) if made.get("expires_at") else "never"
    err.print(
        f"created key {made['id']} '{made['name']}', scopes {' '.join(made['scopes'])}, "
        f"expires {expires}. Store it now: it is not shown again.",
        highlight=False,
    )
    print(made["key"])  # plain stdout, last line: `KEY=$(maas keys create ...)`


@keys_app.command("list")
def keys_list(output: OutputOpt = Output.table) -> None:
    """Every API key: id, name, scopes, created, expires, revoked (never the secret)."""
    try:
        keys = _sdk().keys()
    except MaasError as exc:
        _fail(exc)
    if output is Output.json:
        print_json(keys)  # the records as the API sends them: no secret, ever
    else:
        now = datetime.now(UTC).timestamp()
        print_table(out, "API keys", o.KEY_COLUMNS, [o.key_cells(k, now) for k in keys])


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `maas keys list`).")],
) -> None:
    """Revoke a key: every replica refuses it within about a second."""
    try:
        record = _sdk().revoke_key(key_id)
    except MaasError as exc:
        _fail(exc)
    out.print(f"revoked key {record['id']} '{record['name']}'")


@app.command()
def audit(
    model: Annotated[str | None, typer.Option(help="Only this model (or key id).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. deploy or key.create.")
    ] = None,
    limit: Annotated[int, typer.Option(help="The newest N records.")] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """Management actions: when, who (key name), what, on what, and how it ended."""
    try:
        records = _sdk().audit(model, action, limit)
    except MaasError as exc:
        _fail(exc)
    if output is Output.json:
        print_json(records)
    else:
        rows = [o.audit_cells(r) for r in records]
        print_table(out, "audit log", o.AUDIT_COLUMNS, rows, "no audit records yet")


def main() -> None:
    """Console-script entry point."""
    app()
