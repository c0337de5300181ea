"""The unfitted pipeline a training spec names: a factory, estimator steps, or a
pickled object the SDK staged.

An estimator step ``{"sklearn.naive_bayes.MultinomialNB": {"alpha": 1.0}}`` is the
class imported and called with its params (list values become tuples, as
``ngram_range`` wants); several steps are chained with ``make_pipeline``. A factory
``"package.module:build"`` is imported and called with no arguments. Importing and
unpickling run code: only callers with the ``train`` scope get this far.
"""

from __future__ import annotations

import importlib
from typing import Any

from maas_ray.errors import BadRequest


def build(pipeline: str | list[dict[str, dict[str, Any]]] | Any) -> Any:
    """An unfitted estimator from a factory name, estimator steps, or an object."""
    if isinstance(pipeline, str):
        module, _, attr = pipeline.partition(":")
        factory = _resolve(module, attr, pipeline)
        if not callable(factory):
            raise BadRequest(f"pipeline '{pipeline}' is not callable")
        try:
            made = factory()
        except Exception as exc:  # the user's factory: whatever it raises, say so
            raise BadRequest(f"pipeline '{pipeline}' failed: {type(exc).__name__}: {exc}") from exc
        return check(made, pipeline)
    if isinstance(pipeline, list):
        steps = [_step(step) for step in pipeline]
        if len(steps) == 1:
            return check(steps[0], "pipeline")
        from sklearn.pipeline import make_pipeline

        return check(make_pipeline(*steps), "pipeline")
    return check(pipeline, type(pipeline).__name__)


def _step(step: dict[str, dict[str, Any]]) -> Any:
    ((path, params),) = step.items()
    module, _, attr = path.rpartition(".")
    cls = _resolve(module, attr, path)
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in (params or {}).items()}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise BadRequest(f"pipeline step {path}: {exc}") from exc


def _resolve(module: str, attr: str, named: str) -> Any:
    try:
        found: Any = importlib.import_module(module)
    except ImportError as exc:
        raise BadRequest(f"pipeline '{named}': cannot import {module} ({exc})") from exc
    for part in attr.split("."):
        if not hasattr(found, part):
            raise BadRequest(f"pipeline '{named}': {module} has no '{attr}'")
        found = getattr(found, part)
    return found


def check(estimator: Any, named: str) -> Any:
    """An object with ``fit`` and ``predict`` (what a scikit-learn estimator has)."""
    if not (hasattr(estimator, "fit") and hasattr(estimator, "predict")):
        raise BadRequest(
            f"pipeline {named} gave {type(estimator).__name__}: expected an unfitted "
            "scikit-learn estimator (with fit and predict)"
        )
    return estimator


def task_of(estimator: Any, y: Any) -> str:
    """``classification`` or ``regression``: the estimator says, else the label's type."""
    from sklearn.base import is_classifier, is_regressor

    if is_classifier(estimator):
        return "classification"
    if is_regressor(estimator):
        return "regression"
    import pandas as pd

    numeric = pd.api.types.is_float_dtype(pd.Series(y))
    return "regression" if numeric else "classification"
