"""The ``maas`` command: a thin typer layer over the SDK and the control plane.

The commands live in one module per concept (``platform``, ``models``, ``lifecycle``,
``keys``, ``training``); this module holds the app, its global options and the entry point.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from maas_ray.cli import keys, lifecycle, models, monitor, platform, training
from maas_ray.cli._common import overrides

# MLflow and Ray load only in the commands that need them (`up`, `down`, `register`):
# the others are HTTP calls, and importing MLflow alone takes ~2 s.
app = typer.Typer(help="maas_ray: serve MLflow models on Ray.", no_args_is_help=True)

# In the order `maas --help` lists them (typer keeps registration order).
_COMMANDS: list[tuple[str, Callable[..., Any]]] = [
    ("up", platform.up),
    ("ray-env", platform.ray_env),
    ("down", platform.down),
    ("status", platform.status),
    ("register", models.register),
    ("deploy", lifecycle.deploy),
    ("promote", lifecycle.promote),
    ("rollback", lifecycle.rollback),
    ("canary", lifecycle.canary),
    ("shadow", lifecycle.shadow),
    ("apply", lifecycle.apply_file),
    ("history", lifecycle.history),
    ("undeploy", lifecycle.undeploy),
    ("predict", models.predict),
    ("explain", models.explain),
    ("feedback", monitor.feedback),
    ("monitor", monitor.monitor),
    ("train", training.train),
    ("tune", training.tune),
    ("finetune", training.finetune),
    ("retrain", training.retrain),
    ("audit", keys.audit),
]
for _name, _command in _COMMANDS:
    app.command(_name)(_command)
app.add_typer(models.models_app, name="models")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(training.jobs_app, name="jobs")


@app.callback()
def _global(
    home: Annotated[Path | None, typer.Option(help="MAAS_HOME folder.")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address of every service.")] = None,
    mlflow_port: Annotated[int | None, typer.Option(help="MLflow server port.")] = None,
    serve_port: Annotated[int | None, typer.Option(help="Serve HTTP port.")] = None,
    grpc_port: Annotated[int | None, typer.Option(help="Serve gRPC port (0: off).")] = None,
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
        "grpc_port": grpc_port,
        "dashboard_port": dashboard_port,
        "ray_port": ray_port,
    }
    overrides.update({k: v for k, v in given.items() if v is not None})
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr)


def main() -> None:
    """Console-script entry point."""
    app()
