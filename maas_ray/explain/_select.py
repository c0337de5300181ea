"""Which explainer fits a loaded model version, decided from its MLflow flavour
and the object underneath; shap and captum are imported here, when one is built.

    scikit-learn text pipeline (vectorizer + linear model or naive Bayes) -> text.py
    other scikit-learn estimator or pipeline (rows of numbers) -> tabular.py (SHAP)
    mlflow.pytorch module, or the platform's torch packaging -> torch.py (Captum)
    anything else -> NotExplainable (422 not_explainable)

What a PythonModel holding a torch module as ``model`` may declare (all optional):

    finetune_loss     what the module outputs ("cross_entropy", "mse", ...)
    finetune_inputs   rows (numpy) -> the module's float32 input (e.g. a scaler)
    classes           the class labels, in the order of the module's outputs
    feature_names     the names of a row's columns
    explain_images    rows (encoded images, as the request gives them) -> the
                      module's input, a float32 torch.Tensor N x C x H x W: the model
                      takes images, and each row gets a saliency map (H x W)
    image_shape       (H, W): rows of numbers that are H x W images, flattened row by
                      row (e.g. 8 x 8 digits); each row gets a saliency map too
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol

from mlflow.pyfunc import PyFuncModel
from mlflow.types import Schema

from maas_ray.errors import NotExplainable
from maas_ray.explain.answer import Explained

logger = logging.getLogger(__name__)


class Explainer(Protocol):
    method: str

    def explain(self, data: Any) -> Explained: ...


def columns_of(schema: Schema | None) -> list[str] | None:
    """The input signature's column names (None: a tensor or unnamed input)."""
    if schema is None or schema.is_tensor_spec() or not schema.has_input_names():
        return None
    return [str(n) for n in schema.input_names()]


def build(model: PyFuncModel, background: Any, example: Any, where: str) -> tuple[Explainer, bool]:
    """The explainer of ``model``, and whether it used the stored ``background`` (else
    the input ``example``, or none). ``where`` names the version in messages."""
    flavors = model.metadata.flavors
    schema = model.metadata.get_input_schema()
    columns = columns_of(schema)
    if "sklearn" in flavors:
        from maas_ray.explain import text

        estimator = model.get_raw_model()
        if text.is_text_pipeline(estimator):
            if not text.explains(estimator):
                final = type(estimator.steps[-1][1]).__name__
                raise NotExplainable(
                    f"{where} is a text pipeline ending in {final}: explanations cover "
                    "text pipelines ending in a linear model or a multinomial naive Bayes"
                )
            return text.TextExplainer(estimator), False
        rows = background if background is not None else example
        if rows is None:
            raise NotExplainable(
                f"{where} has no background sample nor input example to explain against: "
                "register it with background= (rows like its input)"
            )
        from maas_ray.explain.tabular import TabularExplainer

        try:
            return TabularExplainer(estimator, rows, columns), background is not None
        except (TypeError, ValueError) as exc:  # e.g. rows that are not numbers
            raise NotExplainable(f"{where} cannot be explained with SHAP: {exc}") from exc
    module, loss, prepare, classes = _torch_parts(model, flavors)
    if module is not None:
        from maas_ray.explain.torch import TorchExplainer

        images, shape = _image_parts(model, where)
        if prepare is None and images is None and _takes_text(schema):
            raise NotExplainable(
                f"{where} is a PyTorch model that takes text (e.g. an embedding model): "
                "integrated gradients need numbers in; text is explained for scikit-learn "
                "text pipelines"
            )
        module.eval()
        # A tensor input has no column names; the model may know them (``feature_names``).
        names = columns or _feature_names(model)
        explainer = TorchExplainer(
            module, loss, prepare, background, names, classes, images=images, image_shape=shape
        )
        return explainer, background is not None
    kind = next((f for f in flavors if f != "python_function"), "python_function")
    raise NotExplainable(
        f"{where} is a {kind} model: explanations cover scikit-learn models (SHAP, text "
        "pipelines) and PyTorch modules (integrated gradients)"
    )


def _torch_parts(model: PyFuncModel, flavors: dict[str, Any]) -> tuple[Any, Any, Any, Any]:
    """(module, finetune_loss, finetune_inputs, classes) of a torch version, or Nones:
    an ``mlflow.pytorch`` module, or a PythonModel holding one as ``model`` (the
    platform's packaging, ``training/torch_model.py``)."""
    nothing = (None, None, None, None)
    torch = sys.modules.get("torch")  # a torch model imported it when it loaded
    if torch is None:
        return nothing
    if "pytorch" in flavors:
        return model.get_raw_model(), None, None, None
    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - not a PythonModel: nothing to explain
        return nothing
    module = getattr(python_model, "model", None)
    if not isinstance(module, torch.nn.Module):
        return nothing
    return (
        module,
        getattr(python_model, "finetune_loss", None),
        getattr(python_model, "finetune_inputs", None),
        getattr(python_model, "classes", None),
    )


def _feature_names(model: PyFuncModel) -> list[str] | None:
    try:
        names = getattr(model.unwrap_python_model(), "feature_names", None)
    except Exception:  # noqa: BLE001 - not a PythonModel: no names
        return None
    return [str(n) for n in names] if names else None


def _takes_text(schema: Schema | None) -> bool:
    """Whether the input signature is strings (a tensor of them, or string columns)."""
    if schema is None:
        return False
    if schema.is_tensor_spec():
        return any(getattr(spec.type, "kind", "f") in "OUS" for spec in schema.inputs)
    return any(str(getattr(spec, "type", "")).lower().endswith("string") for spec in schema.inputs)


def _image_parts(model: PyFuncModel, where: str) -> tuple[Any, tuple[int, int] | None]:
    """(explain_images, image_shape) of a PythonModel, or Nones (see the docstring)."""
    try:
        python_model = model.unwrap_python_model()
    except Exception:  # noqa: BLE001 - not a PythonModel: no images
        return None, None
    images = getattr(python_model, "explain_images", None)
    shape = getattr(python_model, "image_shape", None)
    if images is not None and not callable(images):
        raise NotExplainable(f"{where} has an explain_images that is not a method")
    if shape is not None:
        try:
            h, w = (int(n) for n in shape)
        except (TypeError, ValueError):
            raise NotExplainable(
                f"{where} declares image_shape={shape!r}: expected (height, width)"
            ) from None
        if h < 1 or w < 1:
            raise NotExplainable(f"{where} declares image_shape={shape!r}: expected sides >= 1")
        return images, (h, w)
    return images, None
