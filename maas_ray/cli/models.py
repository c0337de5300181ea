"""Registered models: ``models list|show``, ``register``, ``predict`` and ``explain``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from maas_ray.cli import _output as o
from maas_ray.cli._common import OutputOpt, err, out, parse_tags, reports_errors, sdk, spinner
from maas_ray.cli._output import Output, print_json, print_table
from maas_ray.client import wrap_inputs

models_app = typer.Typer(help="Registered models.", no_args_is_help=True)


@models_app.command("list")
@reports_errors
def models_list(output: OutputOpt = Output.table) -> None:
    """Registered models with their latest version and aliases."""
    models = sdk().models()
    if output is Output.json:
        print_json([m.model_dump(mode="json") for m in models])
    else:
        print_table(out, "registered models", o.MODEL_COLUMNS, [o.model_cells(m) for m in models])


@models_app.command("show")
@reports_errors
def models_show(name: str, output: OutputOpt = Output.table) -> None:
    """Every version of one model: signature, digest, tags, description."""
    model = sdk().model(name)
    if output is Output.json:
        print_json(model.model_dump(mode="json"))
    else:
        rows = [o.version_cells(v) for v in model.versions]
        print_table(out, model.name, o.VERSION_COLUMNS, rows)


@reports_errors
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
    with spinner(f"registering {name}"):
        v = sdk().register_uri(name, model_uri, description=description, tags=parse_tags(tag))
    out.print(f"registered {v.name} version {v.version} (sha256 {v.sha256})")


@reports_errors
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
    body, ctype = _body(json_, file)
    answer = sdk().predict_raw(name, body, ctype, version)
    out.print_json(data={"version": answer.pop("version"), **answer})


@reports_errors
def explain(
    name: str,
    json_: Annotated[
        str | None, typer.Option("--json", help="A scoring payload, or a JSON list of inputs.")
    ] = None,
    file: Annotated[Path | None, typer.Option(help="A .json file with the same.")] = None,
    version: Annotated[str | None, typer.Option(help="Ask this version explicitly.")] = None,
    top: Annotated[int, typer.Option(help="Features shown per row (0: all).", min=0)] = 10,
    png: Annotated[
        Path | None,
        typer.Option(
            help="Image models: write each row's saliency map as a PNG heat map into this "
            "folder (NAME-row-N.png).",
            file_okay=False,
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Explain predictions: per input row, each feature's contribution, largest first."""
    if (json_ is None) == (file is None):
        raise typer.BadParameter("give exactly one of --json or --file")
    text = json_ if json_ is not None else file.read_text()  # type: ignore[union-attr]
    try:
        payload = wrap_inputs(json.loads(text))
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not valid JSON: {exc}") from exc
    answer = sdk().explain(name, payload=payload, version=version, png=png is not None)
    if png is not None:
        png.mkdir(parents=True, exist_ok=True)
        for i, row in enumerate(answer.explanations):
            image = row.png()
            if image is not None:
                (png / f"{name}-row-{i}.png").write_bytes(image)
                err.print(f"row {i}: saliency map written to {png / f'{name}-row-{i}.png'}")
    if output is Output.json:
        print_json(answer.model_dump(mode="json", by_alias=True))
        return
    for title, rows in o.explanation_tables(answer, top):
        print_table(out, title, o.EXPLAIN_COLUMNS, rows)


def _body(json_: str | None, file: Path | None) -> tuple[bytes, str]:
    """A predict's body and content type from ``--json`` or ``--file``."""
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
    return body, ctype
