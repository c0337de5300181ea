"""Register, deploy and query the seed models (run by `make up`).

Each is deployed with its spec in ``deployments/models.yaml`` (replicas, CPUs,
batching), so a later ``maas apply deployments/models.yaml`` changes nothing.
Idempotent: a model that already has a version in the registry is not trained
again unless ``--retrain`` is given, and a deployment already serving the right
version is left as it is.

    python -m examples.seed [--retrain]
"""

from __future__ import annotations

import argparse
import importlib
import json
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from examples._common import register
from maas_ray import MaaS
from maas_ray.errors import MaasError

PRODUCTION = "production"
EXAMPLES = ("sentiment", "tabular", "digits", "minilm", "legal", "translate", "images")
MODELS_FILE = Path(__file__).resolve().parents[1] / "deployments" / "models.yaml"
# A row of more numbers than this is summarised (shape, first values), not dumped.
PREVIEW_VALUES = 8


def specs() -> dict[str, dict[str, Any]]:
    """Each example's deployment options from ``deployments/models.yaml`` (the spec's
    fields but the model and what it serves, which the seed decides)."""
    document = yaml.safe_load(MODELS_FILE.read_text(encoding="utf-8"))
    return {
        entry["model"]: {k: v for k, v in entry.items() if k not in ("model", "alias", "version")}
        for entry in document["models"]
    }


def seed(
    client: MaaS, retrain: bool = False, names: tuple[str, ...] = EXAMPLES
) -> list[dict[str, Any]]:
    """Make sure every example of ``names`` is registered, deployed with its spec and
    answering; return a summary.

    Those not yet served (or not as @production, or not running) are deployed together,
    in one ``apply``: Serve builds and starts them side by side, not one after another.
    """
    rows = []
    options = specs()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ) as bar:
        task = bar.add_task("seed models", total=len(names) * 2 + 1)
        modules = {}
        for name in names:
            modules[name] = module = importlib.import_module(f"examples.{name}.train")
            version = _latest(client, name)
            if version is None or retrain:
                bar.update(task, description=f"{name}: training")
                ex = module.train()
                bar.update(task, description=f"{name}: registering")
                version = register(client, name, ex).version
            # Serve what @production points to, so `maas promote` / `rollback` apply.
            if _production(client, name) is None or retrain:
                client.promote(name, version)
            bar.advance(task)
        status = {s.model: s for s in client.status()}
        todo = [
            name
            for name in names
            if name not in status
            or status[name].alias != PRODUCTION
            or status[name].health != "RUNNING"
        ]
        if todo:
            bar.update(task, description=f"deploying {', '.join(todo)}")
            models = [{"model": n, "alias": PRODUCTION, **options.get(n, {})} for n in todo]
            client.apply(
                {"kind": "MaasDeployments", "models": models},
                progress=lambda t: bar.update(task, description=f"deploying ({t})"),
            )
        bar.advance(task)
        for name, module in modules.items():
            bar.update(task, description=f"{name}: predicting")
            answer = client.predict_raw(
                name, json.dumps({"inputs": module.SAMPLE_INPUTS}).encode(), "application/json"
            )
            bar.advance(task)
            rows.append(
                {
                    "model": name,
                    "version": answer["version"],
                    "route": f"{client.settings.serve_url}/v1/models/{name}/predict",
                    "inputs": module.SAMPLE_INPUTS,
                    "predictions": answer["predictions"],
                }
            )
    return rows


def preview(predictions: Any) -> str:
    """Predictions as table text; vectors (e.g. embeddings) as their shape and first values."""
    rows = predictions if isinstance(predictions, list) else []
    if rows and all(isinstance(r, list) and len(r) > PREVIEW_VALUES for r in rows):
        widths = {len(r) for r in rows}
        width = widths.pop() if len(widths) == 1 else "?"
        head = ", ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in rows[0][:3])
        return f"{len(rows)} x {width} values; row 0: [{head}, ...]"
    return json.dumps(predictions, ensure_ascii=False)


def _latest(client: MaaS, name: str) -> str | None:
    try:
        return client.model(name).latest_version
    except MaasError:
        return None


def _production(client: MaaS, name: str) -> str | None:
    """The version @production points to, through the management API (None: no alias)."""
    try:
        return client.model(name).aliases.get(PRODUCTION)
    except MaasError:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true", help="train and register new versions")
    args = parser.parse_args()
    client = MaaS()
    rows = seed(client, args.retrain)
    s = client.settings
    console = Console()
    table = Table(title='example models (POST {"inputs": [...]} to the route)')
    for col in ("model", "version", "route", "sample predictions"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["model"], r["version"], r["route"], preview(r["predictions"]))
    console.print(table)
    console.print(f"Serve URL:      {s.serve_url}")
    if s.grpc_port:
        console.print(
            f"OIP over gRPC:  {s.host}:{s.grpc_port} (metadata application: maas-gateway)"
        )
    console.print(f"MLflow UI:      {s.mlflow_uri}")
    console.print(f"Ray dashboard:  {s.dashboard_url}")
    if s.auth == "on":
        console.print(
            f"API key:        {s.admin_key_file} (admin; send 'Authorization: Bearer <key>', "
            "or make narrower ones with `maas keys create --scope predict:NAME`)"
        )
    console.print("Status: .venv/bin/maas status    Stop: make down")


if __name__ == "__main__":
    main()
