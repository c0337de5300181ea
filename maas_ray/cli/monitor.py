"""Monitoring: ``maas feedback`` (ground truth in) and ``maas monitor`` (figures out)."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live

from maas_ray.cli._common import OutputOpt, out, reports_errors, sdk, spinner
from maas_ray.cli._output import Cell, Output, is_terminal, print_json, print_table, render_rich
from maas_ray.monitoring.models import MAX_FEEDBACK, Drift, Figures, MonitoringReport

MONITOR_COLUMNS = (
    "version",
    "arm",
    "requests",
    "errors",
    "p50 / p95 / p99 ms",
    "logged",
    "labelled",
    "quality (window)",
    "quality (all time)",
    "drift",
)


def _label(text: str) -> Any:
    """A CSV cell as the label it means: a whole number, a number, else the text."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def read_labels(file: Path) -> list[dict[str, Any]]:
    """A CSV with ``request_id`` and ``label`` columns, or a JSON list, as feedback items."""
    if file.suffix.lower() == ".json":
        data = json.loads(file.read_text())
        return data if isinstance(data, list) else [data]
    with file.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"request_id", "label"} - set(reader.fieldnames or [])
        if missing:
            raise typer.BadParameter(
                f"{file} has no {' or '.join(sorted(missing))} column: its header must name "
                "request_id and label"
            )
        return [{"request_id": row["request_id"], "label": _label(row["label"])} for row in reader]


@reports_errors
def feedback(
    name: str,
    file: Annotated[
        Path,
        typer.Option(
            exists=True, dir_okay=False, help="CSV with request_id,label columns (or a .json list)."
        ),
    ],
) -> None:
    """Send ground-truth labels for earlier predictions of NAME, joined by request id."""
    try:
        items = read_labels(file)
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise typer.BadParameter(f"cannot read {file}: {exc}") from exc
    if not items:
        raise typer.BadParameter(f"{file} holds no labels")
    accepted = unknown = 0
    shown: list[str] = []
    with spinner(f"sending {len(items)} labels") as step:
        for start in range(0, len(items), MAX_FEEDBACK):
            answer = sdk().feedback(name, items[start : start + MAX_FEEDBACK])
            accepted += answer.accepted
            unknown += answer.unknown_request_id
            shown.extend(answer.unknown)
            step(f"{min(start + MAX_FEEDBACK, len(items))}/{len(items)}")
    out.print(
        f"stored {len(items)} labels for {name}: {accepted} joined a logged prediction, "
        f"{unknown} with a request id not in the log (yet)",
        highlight=False,
    )
    if shown:
        out.print(f"unknown, e.g.: {', '.join(shown[:5])}", highlight=False)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _quality(f: Figures) -> str:
    if f.task == "regression":
        return f"mae {f.mae:.4g}  rmse {f.rmse:.4g}"
    if f.task == "classification" and f.accuracy is not None and f.f1 is not None:
        return f"acc {f.accuracy:.3f}  f1 {f.f1:.3f}  (n={f.labelled})"
    return "not enough labels" if f.logged else "-"


def _drift(found: Drift | None) -> str:
    if found is None:
        return "-"
    if found.status == "drifting":
        worst = sorted((f for f in found.features if f.drifted), key=lambda f: -f.psi)
        return "drifting: " + ", ".join(f"{f.feature} {f.psi:.2f}" for f in worst[:3])
    if found.status == "ok":
        top = max((f.psi for f in found.features), default=0.0)
        return f"ok (max PSI {top:.2f}, {found.live_rows} rows)"
    return found.status


def monitor_rows(report: MonitoringReport) -> list[list[Cell]]:
    rows: list[list[Cell]] = []
    for v in report.versions:
        w = v.window
        errors = "-" if w.error_rate is None else f"{w.errors} ({w.error_rate:.1%})"
        rows.append(
            [
                v.version,
                v.arm,
                str(w.requests),
                errors,
                f"{_ms(w.p50_ms)} / {_ms(w.p95_ms)} / {_ms(w.p99_ms)}",
                str(w.logged),
                "-" if w.labelled_share is None else f"{w.labelled} ({w.labelled_share:.0%})",
                _quality(w),
                _quality(v.all_time),
                _drift(v.drift),
            ]
        )
    return rows


PLOT_BUCKETS = 30


def write_plot(report: MonitoringReport, path: Path) -> None:
    """Requests/s, p95 latency, and quality per version and arm over the window, as a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise typer.BadParameter("--plot needs matplotlib: pip install matplotlib") from exc
    bucket_s = report.bucket_s or 1.0
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    for v in report.versions:
        label = f"v{v.version} {v.arm}"
        minutes = [(p.start - report.generated_at) / 60 for p in v.series]
        axes[0].plot(minutes, [p.requests / bucket_s for p in v.series], label=label)
        axes[1].plot(minutes, [p.p95_ms for p in v.series], marker=".", label=label)
        quality = [p.f1 if p.f1 is not None else p.rmse for p in v.series]
        axes[2].plot(minutes, quality, marker="o", label=label)
    axes[0].set_ylabel("requests/s")
    axes[1].set_ylabel("p95 latency (ms)")
    axes[2].set_ylabel("F1 (macro) or RMSE")
    axes[2].set_xlabel("minutes from now")
    axes[0].set_title(_title(report))
    for ax in axes:
        ax.grid(alpha=0.3)
        if report.versions:
            ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _title(report: MonitoringReport) -> str:
    minutes = report.window_s / 60
    return f"{report.model}: the last {minutes:g} min, per version and arm"


@reports_errors
def monitor(
    name: str,
    window: Annotated[
        float | None, typer.Option(help="Window in seconds (default: the platform's, 1 h).")
    ] = None,
    once: Annotated[bool, typer.Option(help="Print the figures once and exit.")] = False,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write the window as charts over time to this PNG file and exit."),
    ] = None,
    every: Annotated[float, typer.Option(help="Seconds between refreshes.", min=0.5)] = 2.0,
    output: OutputOpt = Output.table,
) -> None:
    """Throughput, errors, latency and quality of NAME per version, live (Ctrl-C ends)."""
    client = sdk()
    if plot is not None:
        with spinner(f"charting {name}"):
            report = client.monitoring(name, window, buckets=PLOT_BUCKETS)
            write_plot(report, plot)
        out.print(f"wrote {plot}", highlight=False)
        return
    report = client.monitoring(name, window)
    if output is Output.json:
        print_json(report.model_dump(mode="json"))
        return
    if once or not is_terminal(out):
        print_table(
            out,
            _title(report),
            MONITOR_COLUMNS,
            monitor_rows(report),
            empty=f"{name}: nothing logged yet",
        )
        return
    with Live(
        render_rich(_title(report), MONITOR_COLUMNS, monitor_rows(report)),
        console=out,
        refresh_per_second=4,
    ) as live:
        try:
            while True:
                time.sleep(every)
                report = client.monitoring(name, window)
                live.update(render_rich(_title(report), MONITOR_COLUMNS, monitor_rows(report)))
        except KeyboardInterrupt:
            pass
