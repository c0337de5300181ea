"""Pick the MLflow flavour that fits a Python model object and log it."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import mlflow.sklearn
from mlflow.models.model import ModelInfo

from maas_ray.errors import BadRequest


def _pin(*dists: str) -> list[str]:
    # Pinning what we know avoids MLflow's requirement inference, which reloads the
    # model in a subprocess and costs seconds per registration.
    pins = []
    for dist in dists:
        try:
            pins.append(f"{dist}=={metadata.version(dist)}")
        except metadata.PackageNotFoundError:
            pins.append(dist)
    return pins


def log_model(
    model: Any,
    *,
    registered_model_name: str | None,
    input_example: Any = None,
    signature: Any = None,
    artifacts: dict[str, str] | None = None,
) -> ModelInfo:
    """Log ``model`` under the active run with the flavour that fits it.

    Accepted: a scikit-learn estimator or pipeline, a ``torch.nn.Module``, an
    ``mlflow.pyfunc.PythonModel`` instance, or the path of a Python file for
    MLflow's models-from-code (``artifacts`` are then handed to it).
    """
    common: dict[str, Any] = {
        "name": "model",
        "registered_model_name": registered_model_name,
        "input_example": input_example,
        "signature": signature,
    }
    if isinstance(model, str | Path):
        path = Path(model)
        if path.suffix != ".py" or not path.is_file():
            raise BadRequest(f"got '{model}' for model: expected an existing .py file")
        return mlflow.pyfunc.log_model(
            python_model=str(path),
            artifacts=artifacts,
            pip_requirements=_pin("mlflow", "torch", "numpy", "pandas"),
            **common,
        )
    if isinstance(model, mlflow.pyfunc.PythonModel):
        return mlflow.pyfunc.log_model(
            python_model=model,
            artifacts=artifacts,
            pip_requirements=_pin("mlflow", "cloudpickle", "numpy", "pandas"),
            **common,
        )
    if _is_sklearn(model):
        return mlflow.sklearn.log_model(
            sk_model=model,
            pip_requirements=_pin("mlflow", "scikit-learn", "skops"),
            skops_trusted_types=_skops_types(model),
            **common,
        )
    if _is_torch(model):
        from mlflow import pytorch as mlflow_pytorch

        return mlflow_pytorch.log_model(
            pytorch_model=model, pip_requirements=_pin("mlflow", "torch", "numpy"), **common
        )
    raise BadRequest(
        f"got {type(model).__name__} for model: expected a scikit-learn estimator, a "
        "torch.nn.Module, an mlflow.pyfunc.PythonModel or a models-from-code .py path"
    )


def _is_sklearn(model: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(model, BaseEstimator)


def _is_torch(model: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(model, torch.nn.Module)


def _skops_types(model: Any) -> list[str] | None:
    """The types skops will not load unasked (e.g. a tree's node storage).

    The caller handed us this object in-process, so its own types are trusted; they
    are recorded in the MLmodel file, and the stored bytes are pinned by the digest.
    """
    from maas_ray.registry.skops_io import sio

    return sio.get_untrusted_types(data=sio.dumps(model)) or None
