"""Explanations of a model version's predictions: per input row, how much each
feature (or token) moved the output from a baseline.

``runtime.ModelRuntime.explain`` builds one explainer per replica on the first call
(``_select.build``: SHAP for scikit-learn rows, exact token contributions for text
pipelines, Captum's integrated gradients for PyTorch); shap and captum are imported
then, never at a replica's start. The answer's records (``answer.py``) are light:
the SDK, the CLI and the OpenAPI document use them.
"""

from __future__ import annotations

from maas_ray.explain.answer import Attribution, Explained, Explanations, RowExplanation

__all__ = ["Attribution", "Explained", "Explanations", "RowExplanation"]
