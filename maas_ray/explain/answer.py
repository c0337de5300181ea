"""What an explain call answers: per input row, the explained output and each
feature's (or token's) contribution to it, ranked by size; for an image model, also
the saliency map (each pixel's contribution), and on request its PNG heat map.

Plain pydantic records, light to import: the SDK and the CLI read answers with
them, and the OpenAPI document takes their JSON schemas.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

TOP_PIXELS = 16  # pixels listed as attributions beside a saliency map


class Attribution(BaseModel):
    """One feature's (or token's) contribution to a row's explained output."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(description="Column name, `x[i]` for an unnamed column, or a token.")
    value: float = Field(description="Its contribution, in the explained output's units.")


class RowExplanation(BaseModel):
    """One input row: the output explained, what it is compared with, and why."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    prediction: float = Field(
        description="The explained output for this row (see `output`): e.g. the "
        "predicted class's probability."
    )
    baseline: float = Field(
        description="The same output for the background (its mean, or the reference "
        "input); the attributions add up to `prediction - baseline` where the method "
        "promises it (SHAP: additivity; integrated gradients: completeness)."
    )
    label: str | None = Field(
        default=None,
        alias="class",
        description="The predicted class whose output is explained (classifiers only).",
    )
    attributions: list[Attribution] = Field(
        description="Ranked by |value|, largest first. With a `saliency` map: its "
        f"{TOP_PIXELS} largest pixels only, named `(row, col)` (the map adds up, these "
        "need not)."
    )
    saliency: list[list[float]] | None = Field(
        default=None,
        description="An image model's map (H x W, summed over colour channels): each "
        "pixel's contribution; the map adds up to `prediction - baseline`. Absent for "
        "other models.",
    )
    saliency_png: str | None = Field(
        default=None,
        description="The map as a PNG heat map, base64 (`?format=png`): red raises the "
        "prediction, blue lowers it, white is none, the strongest pixel full colour; each "
        "pixel drawn as a square, the image's longer side at least 256 pixels. Absent "
        "unless asked for.",
    )

    def png(self) -> bytes | None:
        """The PNG heat map's bytes (asked with ``png=True`` / ``?format=png``), or None."""
        return None if self.saliency_png is None else base64.b64decode(self.saliency_png)

    @model_serializer(mode="wrap")
    def _drop_absent_maps(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        # A model without a map answers as it did before maps existed.
        out: dict[str, object] = handler(self)
        for key in ("saliency", "saliency_png"):
            if out.get(key, ...) is None:
                del out[key]
        return out


class Explanations(BaseModel):
    """The answer of ``POST /v1/models/{name}/explain``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str
    method: str = Field(description="e.g. shap.TreeExplainer, captum.IntegratedGradients.")
    output: str = Field(
        description="What `prediction` is: probability, log_odds, value, or "
        "log_likelihood_vs_mean (a naive Bayes text model)."
    )
    background_rows: int = Field(
        description="Rows of the background sample used (0: a zero reference input)."
    )
    explanations: list[RowExplanation] = Field(description="One per input row, in order.")


@dataclass
class Explained:
    """What an explainer found, before the runtime adds the model and version."""

    method: str
    output: str
    background_rows: int
    rows: list[RowExplanation]

    def answer(self, model: str, version: str) -> Explanations:
        return Explanations(
            model=model,
            version=version,
            method=self.method,
            output=self.output,
            background_rows=self.background_rows,
            explanations=self.rows,
        )


def row(
    prediction: float,
    baseline: float,
    names: Sequence[str],
    values: Sequence[float] | np.ndarray,
    label: object = None,
    saliency: np.ndarray | None = None,
) -> RowExplanation:
    """A row's explanation with its attributions ranked by |value|, largest first
    (ties keep the features' order). With a ``saliency`` map (H x W), the attributions
    are its ``TOP_PIXELS`` largest pixels, ``names`` and ``values`` unused."""
    if saliency is not None:
        saliency = np.asarray(saliency, dtype=np.float64)
        width = saliency.shape[1]
        values = saliency.reshape(-1)
        names = [f"({i // width}, {i % width})" for i in range(values.size)]
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    order = np.argsort(-np.abs(values), kind="stable")
    if saliency is not None:
        order = order[:TOP_PIXELS]
    return RowExplanation.model_validate(
        {
            "prediction": float(prediction),
            "baseline": float(baseline),
            "class": None if label is None else str(label),
            "attributions": [
                Attribution(feature=str(names[i]), value=float(values[i])) for i in order
            ],
            "saliency": None if saliency is None else saliency.tolist(),
        }
    )
