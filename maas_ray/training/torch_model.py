"""A registered PyTorch version opened for fine-tuning, and the child saved back.

Two packagings can be trained further:

* the platform's own (``examples/tabular``, ``examples/digits``): MLflow
  models-from-code whose ``PythonModel`` holds the module as ``model`` (its
  ``state_dict`` is the ``weights`` artifact) and names its loss in
  ``finetune_loss``; ``finetune_inputs(rows)`` and ``finetune_targets(labels)``,
  where present, turn raw rows and labels into what the module takes and what
  the loss compares with (the standardisation, the class names). The child
  keeps the parent's code and other artifacts, with new weights.
* sequence to sequence (``finetune_loss = "seq2seq"``, e.g. ``examples/translate``):
  texts in, texts out. ``finetune_inputs(sources)`` gives the source token ids and
  ``finetune_targets(targets)`` the target token ids, each an int64 array
  ``(rows, length)`` padded with 0 (``PAD``); a target row starts with the model's
  begin token and ends with its end token, as its own training has them. Training is
  teacher forced: the module reads ``y[:, :-1]`` and is scored on ``y[:, 1:]``
  (token-level cross entropy, padding ignored) through
  ``finetune_forward(module, x, y_in) -> logits (rows, length, vocabulary)``, or
  ``module(x, y_in)`` where the ``PythonModel`` has no such method (the hook must
  call ``module(...)`` itself: under DDP it is the wrapper). The held-out split is not
  stratified (the labels are sentences) and parent and child are scored with corpus
  BLEU (sacrebleu) of ``predict``'s answers against the label texts.
* models logged with ``mlflow.pytorch``: the module itself. Rows go in as
  float32; the loss follows the output's width (more than one column: cross
  entropy over integer labels; one: mean squared error).

Anything else is refused with a one-line reason. ``inspect`` reads only the
``MLmodel`` file (cheap: the management API uses it); ``open_parent`` downloads
the version, checks its digest, and loads it.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from maas_ray.errors import BadRequest

CODE, PYTORCH = "code", "pytorch"
# What each loss compares: a probability of class 1, a logit of class 1, one logit
# per class, a number.
LOSSES = {
    "binary_probability": "classification",
    "binary_logits": "classification",
    "cross_entropy": "classification",
    "mse": "regression",
    "seq2seq": "sequence",
}
PAD = 0  # the padding id of a seq2seq model's token arrays, ignored by the loss
WEIGHTS = "weights"  # the artifact holding a code model's state_dict


@dataclass
class Layout:
    """What ``MLmodel`` says: the packaging, the code file, the input's shape."""

    kind: str
    columns: list[str] | None  # the signature's column names; None: a tensor input
    width: int | None  # a tensor input's features per row
    flat: bool = False  # a 1-D tensor input (one value per row, e.g. a text)
    code: str | None = None  # a code model's file, in the model's folder
    artifacts: dict[str, str] = field(default_factory=dict)  # name -> path in the folder
    signature: Any = None


def inspect(mlmodel: Path, name: str, version: str) -> Layout:
    """The packaging of a version from its ``MLmodel`` file; refuses what cannot be tuned."""
    from mlflow.models import Model

    meta = Model.load(str(mlmodel))
    flavors = meta.flavors
    where = f"version {version} of '{name}'"
    pyfunc = flavors.get("python_function", {})
    if "pytorch" in flavors:
        kind, code = PYTORCH, None
    elif pyfunc.get("loader_module") == "mlflow.pyfunc.loaders.code_model":
        kind, code = CODE, Path(str(pyfunc.get("model_code_path", ""))).name
        if WEIGHTS not in (pyfunc.get("artifacts") or {}):
            raise BadRequest(f"{where} has no '{WEIGHTS}' artifact: it is not a PyTorch package")
    else:
        other = next((f for f in flavors if f != "python_function"), "python_function")
        raise BadRequest(
            f"{where} is a {other} model: maas finetune trains PyTorch models "
            "(the platform's packaging, or mlflow.pytorch)"
        )
    columns, width, flat = None, None, False
    signature = meta.signature
    if signature is None:
        raise BadRequest(f"{where} has no signature: its feature columns are unknown")
    inputs = signature.inputs
    if inputs.has_input_names() and not inputs.is_tensor_spec():
        columns = [str(n) for n in inputs.input_names()]
    else:
        shape = inputs.inputs[0].shape if inputs.inputs else ()
        width = int(np.prod([d for d in shape[1:]])) if len(shape) > 1 else 1
        flat = len(shape) <= 1
        if any(d < 0 for d in shape[1:]):
            raise BadRequest(f"{where} takes input of shape {shape}: its width is unknown")
    artifacts = {k: v["path"] for k, v in (pyfunc.get("artifacts") or {}).items()}
    return Layout(kind, columns, width, flat, code, artifacts, signature)


def rows_of(layout: Layout, X: pd.DataFrame, where: str) -> np.ndarray:
    """The feature columns as the rows the model takes (signature order): float32,
    or, for the platform's packaging, whatever its ``finetune_inputs`` reads (texts)."""
    if layout.columns is not None:
        missing = [c for c in layout.columns if c not in X.columns]
        if missing:
            raise BadRequest(f"the data lacks the model's input columns: {', '.join(missing[:10])}")
        X = X[layout.columns]
    elif X.shape[1] != layout.width:
        raise BadRequest(
            f"{where} takes {layout.width} features per row; the data has {X.shape[1]} "
            f"columns besides the label"
        )
    if X.isna().any().any():
        raise BadRequest("the features have empty cells: fill or drop those rows")
    non_numeric = [str(c) for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    if not non_numeric:
        return X.to_numpy(dtype=np.float32)
    if layout.kind == PYTORCH:
        raise BadRequest(f"feature columns that are not numbers: {', '.join(non_numeric[:10])}")
    return X.to_numpy(dtype=object)  # the packaging's finetune_inputs turns them into numbers


@dataclass
class Parent:
    """The parent loaded: the module, and how rows and labels become its input and targets."""

    layout: Layout
    folder: Path
    module: Any
    loss: str
    python_model: Any = None

    @property
    def task(self) -> str:
        return LOSSES[self.loss]

    @property
    def sequence(self) -> bool:
        """Token ids in and out (the ``seq2seq`` loss), not one row to one target."""
        return self.task == "sequence"

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        hook = getattr(self.python_model, "finetune_inputs", None)
        dtype = np.int64 if self.sequence else np.float32
        try:
            out = np.asarray(hook(rows) if hook else rows, dtype=dtype)
            if self.sequence and (out.ndim != 2 or out.min(initial=0) < 0):
                raise ValueError(f"finetune_inputs gave {out.shape}, not token ids (rows, length)")
            return out
        except (ValueError, TypeError) as exc:
            raise BadRequest(f"rows the model cannot take: {exc}"[:300]) from exc

    def forward(self, module: Any, x: Any, y_in: Any) -> Any:
        """A seq2seq module's teacher-forced logits (rows, length, vocabulary)."""
        hook = getattr(self.python_model, "finetune_forward", None)
        return hook(module, x, y_in) if hook else module(x, y_in)

    def targets(self, labels: Any) -> np.ndarray:
        """Labels as the loss takes them; a label the model cannot learn is a 400."""
        labels = np.asarray(labels)
        hook = getattr(self.python_model, "finetune_targets", None)
        try:
            out = np.asarray(hook(labels)) if hook else labels
            if self.sequence:
                as_int = out.astype(np.int64)
                if as_int.ndim != 2 or as_int.shape[1] < 2 or as_int.min() < 0:
                    raise ValueError(
                        f"finetune_targets gave {out.shape}: token ids (rows, length >= 2)"
                    )
                return as_int
            if self.loss == "cross_entropy":
                as_int = out.astype(np.int64)
                if not np.array_equal(as_int, out.astype(np.float64)) or as_int.min() < 0:
                    raise ValueError("class labels must be integers 0..K-1")
                return as_int
            return out.astype(np.float32)
        except (ValueError, KeyError, TypeError) as exc:
            raise BadRequest(f"labels the model cannot learn from: {exc}") from exc

    def model_input(self, rows: np.ndarray) -> Any:
        """Rows as the model's signature takes them (a frame, a 2-D or a 1-D array)."""
        if self.layout.columns is not None:
            return pd.DataFrame(rows, columns=self.layout.columns)
        if not self.layout.flat:
            return rows
        flat = rows.reshape(-1)
        # A text column reads as objects; a Tensor('str') signature refuses those.
        spec = self.layout.signature.inputs.inputs[0] if self.layout.signature else None
        if flat.dtype == object and getattr(getattr(spec, "type", None), "kind", None) == "U":
            return flat.astype(str)
        return flat

    def predictions(self, model: Any, rows: np.ndarray) -> np.ndarray:
        """A loaded pyfunc's answers for ``rows``, in the targets' terms."""
        data = self.model_input(rows)
        out = model.predict(data)
        if self.sequence:  # texts out, scored as texts (BLEU)
            seq = out.iloc[:, 0] if isinstance(out, pd.DataFrame) else out
            return np.asarray([str(t) for t in np.asarray(seq, dtype=object).ravel()], dtype=object)
        out = out.to_numpy() if isinstance(out, pd.DataFrame | pd.Series) else np.asarray(out)
        if out.ndim == 2 and out.shape[1] > 1:
            out = out.argmax(axis=1)  # one logit per class
        elif out.ndim == 2:
            out = out[:, 0]
        if self.task == "classification":
            if out.dtype.kind in "OUS":  # class names: as the labels are mapped
                out = self.targets(out)
            elif self.loss == "binary_probability" and self.python_model is None:
                out = out >= 0.5
            out = np.asarray(out).astype(np.int64)
        return out


def open_parent(settings: Any, name: str, version: str, dst: Path) -> Parent:
    """Download the version (digest checked) into ``dst`` and load it for training."""
    from maas_ray.registry import Registry

    folder = Registry(settings.mlflow_uri).download_verified(name, version, dst)
    layout = inspect(folder / "MLmodel", name, version)
    return load(layout, folder, f"version {version} of '{name}'")


def load(layout: Layout, folder: Path, where: str) -> Parent:
    """The module of a downloaded version (a worker does this too)."""
    import torch

    if layout.kind == PYTORCH:
        import mlflow.pytorch

        module = mlflow.pytorch.load_model(str(folder))
        with torch.no_grad():
            width = layout.width or len(layout.columns or [])
            out = module(torch.zeros((2, width), dtype=torch.float32))
        loss = "cross_entropy" if out.ndim == 2 and out.shape[1] > 1 else "mse"
        return Parent(layout, folder, module, loss)
    import mlflow.pyfunc

    python_model = mlflow.pyfunc.load_model(str(folder)).unwrap_python_model()
    module = getattr(python_model, "model", None)
    declared = getattr(python_model, "finetune_loss", None)
    if not isinstance(module, torch.nn.Module) or declared not in LOSSES:
        raise BadRequest(
            f"{where} does not open for fine-tuning: its PythonModel needs a torch module "
            f"as `model` and `finetune_loss` (one of {', '.join(LOSSES)})"
        )
    return Parent(layout, folder, module, str(declared), python_model)


def save_child(parent: Parent, state: dict[str, Any], example: Any) -> Any:
    """Log the child (the parent's packaging, new weights) under the active run."""
    from maas_ray.registry._logging import log_model

    parent.module.load_state_dict(state)
    parent.module.eval()
    if parent.layout.kind == PYTORCH:
        import mlflow.pytorch

        # The parent's format: pt2 (traced; needs an array example) or pickle.
        pickled = any(parent.folder.glob("data/*.pth"))
        return mlflow.pytorch.log_model(
            pytorch_model=parent.module,
            name="model",
            signature=parent.layout.signature,
            input_example=example,
            serialization_format="pickle" if pickled else "pt2",
            pip_requirements=_requirements(parent.folder),
        )
    import torch

    with tempfile.TemporaryDirectory(prefix="maas-child-") as tmp:
        artifacts = {}
        for key, rel in parent.layout.artifacts.items():
            if key == WEIGHTS:
                continue
            target = Path(tmp) / Path(rel).name
            shutil.copyfile(parent.folder / rel, target)
            artifacts[key] = str(target)
        weights = Path(tmp) / Path(parent.layout.artifacts[WEIGHTS]).name
        torch.save(parent.module.state_dict(), weights)
        artifacts[WEIGHTS] = str(weights)
        code = Path(tmp) / (parent.layout.code or "model.py")
        shutil.copyfile(parent.folder / (parent.layout.code or "model.py"), code)
        return log_model(
            str(code),
            registered_model_name=None,
            input_example=example,
            signature=parent.layout.signature,
            artifacts=artifacts,
        )


def _requirements(folder: Path) -> list[str] | None:
    path = folder / "requirements.txt"
    if not path.is_file():
        return None
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
