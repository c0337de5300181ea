"""Who may do what: ``keys create|list|revoke`` and the ``audit`` log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from maas_ray.cli import _output as o
from maas_ray.cli._common import OutputOpt, err, out, reports_errors, sdk
from maas_ray.cli._output import Output, print_json, print_table

keys_app = typer.Typer(help="API keys (scope admin).", no_args_is_help=True)


@keys_app.command("create")
@reports_errors
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
    made = sdk().create_key(scope, name, expires_in)
    expires = o.when(made.expires_at) if made.expires_at else "never"
    err.print(
        f"created key {made.id} '{made.name}', scopes {' '.join(made.scopes)}, "
        f"expires {expires}. Store it now: it is not shown again.",
        highlight=False,
    )
    print(made.key)  # plain stdout, last line: `KEY=$(maas keys create ...)`


@keys_app.command("list")
@reports_errors
def keys_list(output: OutputOpt = Output.table) -> None:
    """Every API key: id, name, scopes, created, expires, revoked (never the secret)."""
    keys = sdk().keys()
    if output is Output.json:
        print_json([k.model_dump() for k in keys])  # as the API sends them: no secret, ever
    else:
        now = datetime.now(UTC).timestamp()
        print_table(out, "API keys", o.KEY_COLUMNS, [o.key_cells(k, now) for k in keys])


@keys_app.command("revoke")
@reports_errors
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `maas keys list`).")],
) -> None:
    """Revoke a key: every replica refuses it within about a second."""
    record = sdk().revoke_key(key_id)
    out.print(f"revoked key {record.id} '{record.name}'")


@reports_errors
def audit(
    model: Annotated[str | None, typer.Option(help="Only this model (or key id).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action, e.g. deploy or key.create.")
    ] = None,
    limit: Annotated[int, typer.Option(help="The newest N records.")] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """Management actions: when, who (key name), what, on what, and how it ended."""
    records = sdk().audit(model, action, limit)
    if output is Output.json:
        print_json([r.model_dump() for r in records])
    else:
        rows = [o.audit_cells(r) for r in records]
        print_table(out, "audit log", o.AUDIT_COLUMNS, rows, "no audit records yet")
