"""How the CLI prints tables and documents: rich on a terminal, plain text in a pipe.

Off a terminal rich assumes 80 columns, so it cuts long names ("sentime…") and folds
cells letters wide; ``maas status | grep`` and ``| cat`` must see whole values instead.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table
from rich.text import Text

from maas_ray.control.status import ModelStatus, NodeResources, TrafficReport
from maas_ray.explain.answer import Explanations
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.security.audit import AuditRecord
from maas_ray.security.keys import KeyRecord

GAP = "  "  # between plain columns
GIB = 2**30
_plain_tables: list[str] = []  # the titles printed so far by this process, off a terminal


class Output(StrEnum):
    """What ``-o/--output`` of a read command accepts."""

    table = "table"
    json = "json"


class Styled(NamedTuple):
    """A cell with a rich style (e.g. green health); the style is dropped off a terminal."""

    text: str
    style: str


Cell = str | Styled


def cell_text(cell: Cell) -> str:
    """The cell on one line: a multi-line value (a signature) is joined with '; '."""
    text = cell.text if isinstance(cell, Styled) else cell
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())


def render_plain(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """Title, header and one line per row, columns aligned, nothing cut, no colour."""
    lines = [[cell_text(c) for c in columns]] + [[cell_text(c) for c in row] for row in rows]
    # cell_len, not len: a wide character (CJK, emoji) takes two columns.
    widths = [max(cell_len(line[i]) for line in lines) for i in range(len(columns))]
    body = [
        GAP.join(
            text + " " * (width - cell_len(text)) for text, width in zip(line, widths, strict=True)
        )
        for line in lines
    ]
    return "\n".join([title, *(line.rstrip() for line in body)])


def render_rich(title: str, columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> Table:
    """The terminal table; cells are Text, so a '[' in a value is never read as markup."""
    table = Table(title=title)
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(
            *(Text(c.text, style=c.style) if isinstance(c, Styled) else Text(c) for c in row)
        )
    return table


def is_terminal(console: Console) -> bool:
    """True only when both Python and rich see a terminal on stdout."""
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty()) and console.is_terminal


def print_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Cell]],
    empty: str | None = None,
) -> None:
    """Print a table on stdout (rich or plain); ``empty`` instead when given and no rows."""
    if not rows and empty is not None:
        print(empty)
    elif is_terminal(console):
        console.print(render_rich(title, columns, rows))
    else:
        # A blank line between two tables, so the second title is not read as a row.
        gap = "\n" if _plain_tables else ""
        _plain_tables.append(title)
        print(gap + render_plain(title, columns, rows), flush=True)


def print_json(data: Any) -> None:
    """Exactly one JSON document on stdout."""
    print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


# -- the rows of each read command (the JSON output is the models themselves) ---------
STATUS_COLUMNS = (
    "model",
    "alias -> version",
    "traffic",
    "replicas",
    "CPUs",
    "GPUs",
    "health",
    "route",
    "quality",
)
NODE_COLUMNS = ("node", "CPU", "GPU", "memory (GiB)")
SERVING_COLUMNS = ("version", "role", "replicas", "answered (this replica)", "agreement")
MODEL_COLUMNS = ("name", "latest", "aliases", "description")
VERSION_COLUMNS = ("version", "created", "aliases", "signature", "sha256", "tags", "description")
HISTORY_COLUMNS = ("#", "time (UTC)", "actor", "action", "alias", "from", "to", "detail")
KEY_COLUMNS = ("id", "name", "scopes", "created (UTC)", "expires", "state")
AUDIT_COLUMNS = ("time (UTC)", "actor", "action", "target", "outcome", "detail")


def when(epoch_s: float) -> str:
    """A UTC time as the tables show it."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def status_cells(r: ModelStatus) -> list[Cell]:
    """One deployment of ``maas status``."""
    version = (f"@{r.alias} -> " if r.alias else "") + (f"v{r.version}" if r.version else "-")
    replicas = f"{r.replicas_running}/{r.replicas_target}"
    if r.replicas_spec != str(r.replicas_target):
        replicas += f" ({r.replicas_spec})"
    if r.challenger is not None:
        c = r.challenger
        replicas += f" + {c.replicas_running}/{c.replicas_target} {c.role}"
    health = Styled(r.health, "green" if r.health == "RUNNING" else "yellow")
    return [
        r.model,
        version,
        r.traffic,
        replicas,
        f"{r.num_cpus:g}",
        f"{r.num_gpus:g}",
        health,
        r.route,
        Styled(r.quality, "red" if r.quality.startswith("degraded") else ""),
    ]


def node_cells(n: NodeResources) -> list[Cell]:
    """One cluster node: logical CPU/GPU used of total, host memory in GiB."""
    node = n.address + (" (head)" if n.is_head else "") + ("" if n.alive else " (dead)")
    return [
        node,
        f"{n.cpu_used:g}/{n.cpu_total:g}",
        f"{n.gpu_used:g}/{n.gpu_total:g}",
        f"{n.memory_used_bytes / GIB:.1f}/{n.memory_total_bytes / GIB:.1f}",
    ]


def serving_rows(row: ModelStatus, traffic: TrafficReport | None) -> list[list[Cell]]:
    """The versions one model serves: role, replicas, answers, shadow agreement."""
    answered = traffic.answered if traffic is not None else {}
    primary = row.version or "-"
    replicas = f"{row.replicas_running}/{row.replicas_target}"
    rows: list[list[Cell]] = [
        [primary, "primary", replicas, str(answered.get(row.version or "", 0)), "-"]
    ]
    c = row.challenger
    if c is not None:
        agree = "-"
        stats = traffic.agreement if traffic is not None else None
        if c.role == "shadow" and stats:
            rate = stats.agree / stats.rows if stats.rows else 0.0
            agree = (
                f"{rate:.1%} of {stats.rows} rows "
                f"({stats.requests} requests, {stats.errors} errors)"
            )
        replicas = f"{c.replicas_running}/{c.replicas_target}"
        rows.append([c.version, c.role, replicas, str(answered.get(c.version, 0)), agree])
    return rows


def model_cells(m: ModelInfo) -> list[Cell]:
    """One registered model of ``maas models list``."""
    aliases = ", ".join(f"{a}->v{v}" for a, v in sorted(m.aliases.items()))
    return [m.name, m.latest_version or "-", aliases, m.description]


def version_cells(v: VersionInfo) -> list[Cell]:
    """One version of ``maas models show``."""
    return [
        v.version,
        when(v.created_ms / 1000),
        ", ".join(v.aliases),
        signature_text(v.signature),
        (v.sha256 or "-")[:16],
        ", ".join(f"{k}={x}" for k, x in sorted(v.tags.items())),
        v.description,
    ]


def signature_text(signature: dict[str, Any] | None) -> str:
    """'inputs: ...' and 'outputs: ...' on two lines (one, joined by '; ', off a terminal)."""
    if not signature:
        return "-"
    parts = []
    for key in ("inputs", "outputs"):
        raw = signature.get(key)
        specs = json.loads(raw) if isinstance(raw, str) else raw or []
        text = ", ".join(
            (f"{s['name']}:" if s.get("name") else "")
            + str(s.get("type"))
            + (
                f"{s['tensor-spec']['dtype']}{tuple(s['tensor-spec']['shape'])}"
                if "tensor-spec" in s
                else ""
            )
            for s in specs
        )
        parts.append(f"{key}: {text or '-'}")
    return "\n".join(parts)


def history_cells(e: HistoryEvent) -> list[Cell]:
    """One alias move or deploy action of ``maas history``."""
    alias = f"@{e.alias}" if e.alias else "-"
    return [
        str(e.seq),
        when(e.time_ms / 1000),
        e.actor,
        e.action,
        alias,
        e.from_version or "-",
        e.to_version or "-",
        e.detail,
    ]


def key_cells(k: KeyRecord, now: float) -> list[Cell]:
    """One API key record of ``maas keys list`` (never a secret: the API has none)."""
    expires = k.expires_at
    state = "revoked" if k.revoked_at else "expired" if expires and expires < now else "active"
    return [
        k.id,
        k.name,
        " ".join(k.scopes),
        when(k.created_at),
        when(expires) if expires else "never",
        Styled(state, "green" if state == "active" else "red"),
    ]


def audit_cells(r: AuditRecord) -> list[Cell]:
    """One audit record of ``maas audit``."""
    outcome = Styled(f"{r.outcome} {r.status}", "green" if r.outcome == "ok" else "red")
    return [when(r.time), r.actor, r.action, r.target, outcome, r.detail]


EXPLAIN_COLUMNS = ("feature", "contribution")


def explanation_tables(answer: Explanations, top: int = 0) -> list[tuple[str, list[list[Cell]]]]:
    """One (title, rows) per explained input row: its prediction and baseline in the title,
    then each feature with its contribution, largest |contribution| first (``top`` > 0:
    only that many); pushes up green, down red."""
    tables: list[tuple[str, list[list[Cell]]]] = []
    for i, row in enumerate(answer.explanations):
        label = f" of class {row.label}" if row.label is not None else ""
        title = (
            f"row {i}: {answer.output}{label} {row.prediction:.4g}, baseline {row.baseline:.4g} "
            f"({answer.method}, {answer.model} v{answer.version})"
        )
        shown = row.attributions[:top] if top > 0 else row.attributions
        cells: list[list[Cell]] = [
            [a.feature, Styled(f"{a.value:+.4g}", "green" if a.value > 0 else "red")] for a in shown
        ]
        tables.append((title, cells))
    return tables
