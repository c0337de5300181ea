"""The training specs: what ``maas train``, ``maas finetune`` and ``maas tune`` ask for.

The ground floor, beside ``spec.py``: the SDK, the CLI, the management API and the
jobs all validate a training, a fine-tune or a search with these models, once.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A model name as the registry takes it (see registry/_names.py): also the
# training spec's ``name``.
_NAME = r"^[^\W_][\w.-]{0,99}$"
# ``module.sub:callable`` that returns an unfitted scikit-learn estimator.
_FACTORY = r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_.]*$"
# An estimator object the SDK pickled into the training's run.
_STAGED = r"^runs:/[0-9a-f]{32}/[\w./-]+\.pkl$"
# ``module.Class`` of a scikit-learn estimator, in an estimator spec.
_CLASS = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$"
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "r2")
SEQUENCE_METRICS = ("bleu",)  # a seq2seq fine-tune's (see training/evaluate.py)


class TrainingSpec(BaseModel):
    """What ``maas train`` fits and registers: data, label, pipeline, split.

    .. code-block:: yaml

        kind: MaasTraining
        name: sentiment
        data: examples/sentiment/data.csv        # CSV or Parquet
        label: label
        pipeline:                                # or "package.module:factory"
          - sklearn.feature_extraction.text.TfidfVectorizer: {analyzer: char_wb}
          - sklearn.naive_bayes.MultinomialNB: {alpha: 1.0}

    ``pipeline`` is an importable factory (``module:callable`` returning an unfitted
    estimator) or estimator steps, each ``{"module.Class": {params}}``, chained with
    scikit-learn's ``make_pipeline``; list values of params become tuples
    (``ngram_range: [1, 3]``). ``data`` is a path the job can read, or an MLflow
    artifact URI (``runs:/...``) where the SDK staged it.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["MaasTraining"] = Field(
        default="MaasTraining", description="Marks a maas_ray training file."
    )
    name: str = Field(description="Registered model to add a version to.")
    data: str = Field(min_length=1, max_length=4096, description="CSV/Parquet path or URI.")
    label: str = Field(default="target", min_length=1, max_length=200)
    pipeline: str | list[dict[str, dict[str, object]]] = Field(
        description="'module:factory', or estimator steps [{'module.Class': {params}}]."
    )
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out share.")
    seed: int = Field(default=0, ge=0, description="Seed of the split (and the estimator).")
    num_cpus: float = Field(default=1.0, gt=0, le=256, description="CPUs the fit task takes.")
    array_input: bool = Field(
        default=False,
        description="Fit on, and serve, a 2-D array without column names (what a version "
        "registered from a NumPy array takes), not named columns.",
    )
    promote_if_better: str | None = Field(
        default=None,
        description="Promote to @production only if this held-out metric beats the "
        "production version's on the same rows.",
    )
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] = Field(default_factory=dict)
    data_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="Set by the SDK when it staged the data: checked against what is read.",
    )
    run_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="MLflow run to log into (where the SDK staged the inputs); None: a new one.",
    )

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not re.match(_NAME, name):
            raise ValueError(
                "use letters, digits, '-', '_' or '.', starting with a letter or digit"
            )
        return name

    @model_validator(mode="after")
    def _checked(self) -> TrainingSpec:
        if isinstance(self.pipeline, str):
            if not re.match(_FACTORY, self.pipeline) and not re.match(_STAGED, self.pipeline):
                raise ValueError(
                    f"got pipeline '{self.pipeline}': give 'module:factory' or estimator steps"
                )
        else:
            if not self.pipeline:
                raise ValueError("pipeline: give at least one estimator step")
            for step in self.pipeline:
                if len(step) != 1 or not re.match(_CLASS, next(iter(step))):
                    raise ValueError(
                        f"pipeline step {step}: give one {{'module.Class': {{params}}}} per step"
                    )
        metric = self.promote_if_better
        if metric is not None and metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
            raise ValueError(f"promote_if_better: got '{metric}', one of {known}")
        return self


class FinetuneSpec(BaseModel):
    """What ``maas finetune`` trains further with Ray Train: a registered PyTorch
    version, new rows, and the run's shape (workers, epochs, learning rate).

    ``from_version`` None: the version ``@production`` points at. ``data``: CSV or
    Parquet with a ``label`` column; the other columns are the features, in the
    order of the model's signature (by name where the signature names columns).
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["MaasFinetune"] = Field(
        default="MaasFinetune", description="Marks a maas_ray fine-tune document."
    )
    name: str = Field(description="Registered model whose version is trained further.")
    from_version: str | None = Field(
        default=None, pattern=r"^[1-9][0-9]{0,9}$", description="Parent; None: @production."
    )
    data: str = Field(min_length=1, max_length=4096, description="CSV/Parquet path or URI.")
    label: str = Field(default="target", min_length=1, max_length=200)
    workers: int = Field(default=1, ge=1, le=256, description="Ray Train workers (DDP).")
    num_gpus_per_worker: float = Field(
        default=0, ge=0, le=8, description="GPUs each worker takes; >0 trains with NCCL."
    )
    cpus_per_worker: float = Field(
        default=1.0, gt=0, le=64, description="CPUs each worker declares."
    )
    epochs: int = Field(default=2, ge=1, le=10000)
    lr: float = Field(default=1e-3, gt=0, le=10, description="Adam's learning rate.")
    batch_size: int = Field(default=32, ge=1, le=65536, description="Rows per step per worker.")
    test_size: float = Field(default=0.2, gt=0, lt=1, description="Held-out share.")
    seed: int = Field(default=0, ge=0)
    max_failures: int = Field(
        default=1, ge=1, le=100, description="Worker failures the run recovers from."
    )
    promote_if_better: str | None = Field(
        default=None,
        description="Promote to @production only if this held-out metric beats the "
        "production version's on the same rows.",
    )
    description: str | None = Field(default=None, max_length=5000)
    tags: dict[str, str] = Field(default_factory=dict)
    data_sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    run_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{32}$")

    @field_validator("name")
    @classmethod
    def _named(cls, name: str | None) -> str | None:
        return None if name is None else TrainingSpec._named(name)

    @field_validator("promote_if_better")
    @classmethod
    def _metric(cls, metric: str | None) -> str | None:
        known_metrics = CLASSIFICATION_METRICS + REGRESSION_METRICS + SEQUENCE_METRICS
        if metric is not None and metric not in known_metrics:
            known = ", ".join(known_metrics)
            raise ValueError(f"got '{metric}', one of {known}")
        return metric


class FinetuneBody(FinetuneSpec):
    """``POST /v1/admin/models/{name}/finetune``'s body: the spec, its name from the path."""

    name: str | None = Field(  # type: ignore[assignment]
        default=None, description="Taken from the path; if given, it must match."
    )

    def spec(self, name: str) -> FinetuneSpec:
        """The spec for the model of the path (a different name in the body is a 400)."""
        if self.name is not None and self.name != name:
            raise ValueError(f"name: the body names '{self.name}', the path '{name}'")
        return FinetuneSpec.model_validate({**self.model_dump(exclude={"name"}), "name": name})


# A hyperparameter's declared space: values to try each (a grid), or a range to sample.
DISTRIBUTIONS = ("uniform", "loguniform", "randint")


class TuningSpec(TrainingSpec):
    """What ``maas tune`` searches: a ``MaasTraining`` document plus a small space.

    .. code-block:: yaml

        kind: MaasTuning
        name: sentiment
        data: data.csv
        label: label
        pipeline:
          - sklearn.feature_extraction.text.TfidfVectorizer: {analyzer: char_wb}
          - sklearn.naive_bayes.MultinomialNB: {}
        search:                                  # scikit-learn's get_params() names
          multinomialnb__alpha: {loguniform: [0.01, 1.0]}
          tfidfvectorizer__ngram_range: [[1, 2], [1, 3]]
        metric: f1
        trials: 4

    A list is a grid (every value is tried, times ``trials``); ``{uniform|loguniform|
    randint: [low, high]}`` is sampled once per trial.
    """

    kind: Literal["MaasTuning"] = Field(  # type: ignore[assignment]
        default="MaasTuning", description="Marks a maas_ray tuning file."
    )
    search: dict[str, list[object] | dict[str, list[float]]] = Field(
        min_length=1,
        max_length=20,
        description="Estimator parameter -> values (a grid) or {distribution: [low, high]}.",
    )
    metric: str = Field(default="accuracy", description="The held-out metric to optimise.")
    trials: int = Field(default=1, ge=1, le=200, description="Samples of the space.")

    @model_validator(mode="after")
    def _space(self) -> TuningSpec:
        if self.metric not in CLASSIFICATION_METRICS + REGRESSION_METRICS:
            known = ", ".join(CLASSIFICATION_METRICS + REGRESSION_METRICS)
            raise ValueError(f"metric: got '{self.metric}', one of {known}")
        for param, space in self.search.items():
            if isinstance(space, list):
                if not space:
                    raise ValueError(f"search.{param}: give at least one value")
                continue
            if len(space) != 1 or next(iter(space)) not in DISTRIBUTIONS:
                raise ValueError(
                    f"search.{param}: give a list of values or one of "
                    f"{', '.join(DISTRIBUTIONS)}: [low, high]"
                )
            kind, bounds = next(iter(space.items()))
            if len(bounds) != 2 or not bounds[0] < bounds[1]:
                raise ValueError(f"search.{param}.{kind}: give [low, high] with low < high")
            if kind == "loguniform" and bounds[0] <= 0:
                raise ValueError(f"search.{param}.loguniform: low must be above 0")
        trials = self.trials
        grid = 1
        for space in self.search.values():
            grid *= len(space) if isinstance(space, list) else 1
        if grid * trials > 200:
            raise ValueError(f"search: {grid * trials} trials; keep it to 200 at most")
        return self
