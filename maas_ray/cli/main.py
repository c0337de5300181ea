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
from rich.table import Table

from maas_ray.client import MaaS, wrap_inputs
from maas_ray.errors import MaasError, VersionNotDeployed
from maas_ray.settings import Settings

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

    settings = _settings()
    if settings.auth == "off":
        err.print(f"[yellow]warning:[/yellow] {AUTH_OFF_WARNING}", highlight=False)
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
    if settings.auth == "on":
        out.print(
            f"admin API key: {settings.admin_key_file} (owner-only; the CLI and SDK use it "
            "unless MAAS_API_KEY is set). Send it as 'Authorization: Bearer <key>'."
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
) -> None:
    """One row per deployed model; with NAME, its versions and live traffic."""
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
    table = Table(title="deployments")
    cols = ("model", "alias -> version", "traffic", "replicas", "CPUs", "GPUs", "health", "route")
    for col in cols:
        table.add_column(col)
    for r in rows:
        version = (f"@{r.alias} -> " if r.alias else "") + (f"v{r.version}" if r.version else "-")
        replicas = f"{r.replicas_running}/{r.replicas_target}"
        if r.replicas_spec != str(r.replicas_target):
            replicas += f" ({r.replicas_spec})"
        if r.challenger is not None:
            c = r.challenger
            replicas += f" + {c.replicas_running}/{c.replicas_target} {c.role}"
        color = "green" if r.health == "RUNNING" else "yellow"
        table.add_row(
            r.model,
            version,
            r.traffic,
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
    if name is not None:
        _status_detail(sdk, rows[0])


def _status_detail(sdk: MaaS, row: Any) -> None:
    """Per-version rows of one model: role, replicas, answers, shadow agreement."""
    try:
        traffic = sdk.traffic(row.model)
    except MaasError as exc:
        err.print(f"live traffic unavailable: {exc.message}", highlight=False)
        traffic = {}
    answered = traffic.get("answered", {})
    table = Table(title=f"{row.model}: versions serving")
    for col in ("version", "role", "replicas", "answered (this replica)", "agreement"):
        table.add_column(col)
    table.add_row(
        row.version or "-",
        "primary",
        f"{row.replicas_running}/{row.replicas_target}",
        str(answered.get(row.version or "", 0)),
        "-",
    )
    c = row.challenger
    if c is not None:
        agree = "-"
        stats = traffic.get("agreement")
        if c.role == "shadow" and stats:
            rate = stats["agree"] / stats["rows"] if stats["rows"] else 0.0
            agree = (
                f"{rate:.1%} of {stats['rows']} rows "
                f"({stats['requests']} requests, {stats['errors']} errors)"
            )
        table.add_row(
            c.version,
            c.role,
            f"{c.replicas_running}/{c.replicas_target}",
            str(answered.get(c.version, 0)),
            agree,
        )
    out.print(table)


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


@app.command()
def promote(
    name: str,
    version: str,
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "production",
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
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "production",
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
    table = Table(title=f"applied {file}")
    table.add_column("model")
    table.add_column("result")
    for model, what in result.items():
        table.add_row(model, what)
    out.print(table)


@app.command()
def history(name: str) -> None:
    """Every alias move and deploy action of NAME: time, actor, from/to version."""
    try:
        events = _sdk().history(name)
    except MaasError as exc:
        _fail(exc)
    table = Table(title=f"{name}: history")
    for col in ("#", "time (UTC)", "actor", "action", "alias", "from", "to", "detail"):
        table.add_column(col)
    for e in events:
        when = datetime.fromtimestamp(e.time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            str(e.seq),
            when,
            e.actor,
            e.action,
            f"@{e.alias}" if e.alias else "-",
            e.from_version or "-",
            e.to_version or "-",
            e.detail,
        )
    out.print(table if events else f"no history for {name} yet")


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
    expires = _when(made["expires_at"]) if made.get("expires_at") else "never"
    err.print(
        f"created key {made['id']} '{made['name']}', scopes {' '.join(made['scopes'])}, "
        f"expires {expires}. Store it now: it is not shown again.",
        highlight=False,
    )
    print(made["key"])  # plain stdout, last line: `KEY=$(maas keys create ...)`


@keys_app.command("list")
def keys_list() -> None:
    """Every API key: id, name, scopes, created, expires, revoked (never the secret)."""
    try:
        keys = _sdk().keys()
    except MaasError as exc:
        _fail(exc)
    table = Table(title="API keys")
    for col in ("id", "name", "scopes", "created (UTC)", "expires", "state"):
        table.add_column(col)
    now = datetime.now(UTC).timestamp()
    for k in keys:
        expires = k.get("expires_at")
        state = (
            "revoked"
            if k.get("revoked_at")
            else "expired"
            if expires and expires < now
            else "active"
        )
        color = "green" if state == "active" else "red"
        table.add_row(
            k["id"],
            k["name"],
            " ".join(k["scopes"]),
            _when(k["created_at"]),
            _when(expires) if expires else "never",
            f"[{color}]{state}[/{color}]",
        )
    out.print(table)


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
) -> None:
    """Management actions: when, who (key name), what, on what, and how it ended."""
    try:
        records = _sdk().audit(model, action, limit)
    except MaasError as exc:
        _fail(exc)
    table = Table(title="audit log")
    for col in ("time (UTC)", "actor", "action", "target", "outcome", "detail"):
        table.add_column(col, overflow="fold")
    for r in records:
        color = "green" if r["outcome"] == "ok" else "red"
        table.add_row(
            _when(r["time"]),
            r["actor"],
            r["action"],
            r["target"],
            f"[{color}]{r['outcome']} {r['status']}[/{color}]",
            r["detail"],
        )
    out.print(table if records else "no audit records yet")


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    """Console-script entry point."""
    app()
