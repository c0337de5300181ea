"""The protocol-neutral core: one loaded model version and its predict call."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import mlflow.pyfunc
import orjson
import psutil
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.pyfunc import PyFuncModel
from mlflow.types import ParamSchema, Schema

from maas_ray.errors import (
    BadRequest,
    InvalidInput,
    MaasError,
    NotExplainable,
    PredictionFailed,
    PredictTimeout,
)
from maas_ray.explain.answer import Explanations
from maas_ray.registry import Registry
from maas_ray.registry.cache import ModelCache
from maas_ray.serving import environment, stored
from maas_ray.serving.batching import combine, split
from maas_ray.serving.decode import MAX_JSON_DEPTH, Request, _message, parse_request
from maas_ray.serving.encode import encode_predictions
from maas_ray.wire import JSON

logger = logging.getLogger(__name__)
_thread = threading.local()


def _lean_sklearn() -> None:
    """Turn off scikit-learn's per-call parameter validation, once per thread.

    It re-checks an estimator's hyper-parameters and helper arguments on every
    ``predict``: about a third of a TF-IDF pipeline's time for one row here
    (measured 835 -> 556 us). The input itself was checked against the signature
    already; sklearn's own input checks (finite values, shapes) stay on. sklearn's
    config is per thread, hence per thread, and only if sklearn is loaded at all.
    """
    if getattr(_thread, "lean", False):
        return
    _thread.lean = True
    sklearn = sys.modules.get("sklearn")
    if sklearn is not None:
        sklearn.set_config(skip_parameter_validation=True)


DOWNLOAD_PREFIX = "maas-load-"  # then the loading process's id: maas-load-PID-NAME-VERSION-*


def download_dir(name: str, version: str) -> str:
    """A new folder for one load's download, named by the loading process. A replica
    killed while it loads (SIGKILL, a lost node) cannot remove its folder; the next
    load on the machine removes those whose process no longer runs."""
    for stale in Path(tempfile.gettempdir()).glob(f"{DOWNLOAD_PREFIX}*"):
        pid = stale.name.removeprefix(DOWNLOAD_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{DOWNLOAD_PREFIX}{os.getpid()}-{name}-{version}-")


class ModelRuntime:
    """A verified, loaded model version; every front end predicts through it."""

    def __init__(self, name: str, version: str, model: PyFuncModel) -> None:
        self.name = name
        self.version = version
        self.model = model
        signature = model.metadata.get_input_schema()
        self.input_schema: Schema | None = signature
        self.output_schema: Schema | None = model.metadata.get_output_schema()
        # The params a request may pass (``{"inputs": ..., "params": {...}}``); None: none.
        self.params_schema: ParamSchema | None = model.metadata.get_params_schema()
        self.max_depth = MAX_JSON_DEPTH  # deepest JSON accepted (settings.json_max_depth)
        # The input example it was registered with, where it predicted at load: what the
        # replica's health check asks it again (see ``healthy``).
        self.example: Any = None
        # What an explainer compares with: the rows stored with the version
        # (register(background=...)), else its input example. The explainer itself is
        # built on the first explain call (shap and captum load then, not here).
        self.background: Any = None
        self.input_example: Any = None
        self._explainer: Any = None
        self._explainer_error: NotExplainable | None = None
        self._explain_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        registry: Registry,
        name: str,
        version: str,
        max_depth: int = MAX_JSON_DEPTH,
        cache: ModelCache | None = None,
    ) -> ModelRuntime:
        """Download ``name``/``version`` from the registry, verify its digest, load it;
        with a ``cache``, a copy verified before on this machine, without MLflow."""
        started = time.perf_counter()
        tmp = download_dir(name, version)
        try:
            local = _kept(cache, registry.uri, name, version, Path(tmp) / "kept")
            source = "this machine's verified copy"
            if local is None:
                local, digest = registry.download_checked(name, version, tmp)
                source = "the registry"
                if cache is not None:
                    try:
                        cache.keep(registry.uri, name, version, digest, local)
                    except OSError:  # the cache only saves a download: never fail a load
                        logger.warning("could not keep %s v%s", name, version, exc_info=True)
            runtime = cls.load_local(name, version, local, max_depth)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        logger.info(
            "loaded model %s version %s from %s in %.2fs",
            name,
            version,
            source,
            time.perf_counter() - started,
        )
        return runtime

    @classmethod
    def load_local(
        cls, name: str, version: str, local: Path, max_depth: int = MAX_JSON_DEPTH
    ) -> ModelRuntime:
        """Load a version from a folder already downloaded and verified (``load``), or
        saved by MLflow (tests), with its input example and background rows."""
        mlmodel = local / "MLmodel"  # absent: MLflow's load below says what is wrong
        if mlmodel.is_file():
            flavors = Model.load(str(mlmodel)).flavors
            if "sklearn" in flavors:
                import maas_ray.registry.skops_io  # noqa: F401 - before MLflow's own import
            environment.check(local, flavors.get("python_function", {}).get("python_version"))
        # Its own environment check walks every installed package: environment.py instead.
        model = mlflow.pyfunc.load_model(str(local), suppress_warnings=True)
        example = stored.input_example(model, local)
        runtime = cls(name, version, model)
        runtime.max_depth = max_depth
        runtime.background, runtime.input_example = stored.background_rows(local), example
        if example is not None:
            try:
                runtime.predict(example)
                runtime.example = example
            except MaasError:  # not one it can answer: the health check asks nothing of it
                logger.warning("%s v%s does not predict its own input example", name, version)
        runtime.warm_up(stored.serving_input(model, local))
        return runtime

    def warm_up(self, body: bytes | None) -> None:
        """Send ``body`` (the example as a request, MLflow's ``serving_input_example.json``)
        the whole request path once: decoding and encoding load what they need on first use,
        so the first requests a new replica is sent are not the slow ones. One it cannot
        answer (any error: this is only a warm-up) changes nothing."""
        if body is None:
            return
        try:
            self.predict_bytes(body, JSON)
        except Exception:  # noqa: BLE001 - the load succeeded; requests say what is wrong
            logger.info(
                "%s v%s does not answer its serving input example",
                self.name,
                self.version,
                exc_info=True,
            )

    def healthy(self) -> None:
        """Raise (a MaasError) unless the model still predicts the input example it
        predicted at load; a model without one has nothing to answer."""
        if self.example is not None:
            self.predict(self.example)

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        """Predict on parsed input (with the request's params, checked by ``parse``);
        signature mismatches become InvalidInput (422)."""
        _lean_sklearn()
        try:
            if params:
                return self.model.predict(data, params=params)
            return self.model.predict(data)
        except MlflowException as exc:
            raise InvalidInput(_message(exc)) from exc
        except Exception as exc:
            # MLflow's scoring server answers 400 here too: the input passed the
            # signature but the model could not use it. Keep the trace in our log.
            logger.warning(
                "model %s v%s failed on an input", self.name, self.version, exc_info=True
            )
            raise PredictionFailed(
                f"model '{self.name}' version {self.version} could not predict this input: "
                f"{type(exc).__name__}: {_message(exc)}"
            ) from exc

    def parse(self, body: bytes, content_type: str | None) -> Request:
        """A request body as this version's model input and params (checked against its
        signature)."""
        return parse_request(
            body, content_type, self.input_schema, self.params_schema, max_depth=self.max_depth
        )

    def predict_bytes(self, body: bytes, content_type: str | None) -> bytes:
        """Parse a request body, predict, and encode the answer."""
        request = self.parse(body, content_type)
        return encode_predictions(self.predict(request.data, request.params))

    def predict_many(self, inputs: list[Request]) -> list[bytes | MaasError]:
        """Predict parsed requests, in one model call where they join (same kind of
        input, equal params).

        A failure of the joined call falls back to one call per input, so one bad
        request never fails the others; each failure is returned in its place.
        """
        joined = combine([r.data for r in inputs], [r.params for r in inputs])
        if joined is not None:
            data, lengths = joined
            try:
                parts = split(self.predict(data, inputs[0].params), lengths)
            except MaasError:
                parts = None
            if parts is not None:
                return [encode_predictions(part) for part in parts]
        answers: list[bytes | MaasError] = []
        for item in inputs:
            try:
                answers.append(encode_predictions(self.predict(item.data, item.params)))
            except MaasError as exc:
                answers.append(exc)
        return answers

    def explainer(self) -> Any:
        """This version's explainer, built on the first call (once: under a lock, and
        checked again after taking it); a model no explainer fits raises
        NotExplainable, every time, without trying again."""
        if self._explainer is None and self._explainer_error is None:
            with self._explain_lock:
                if self._explainer is None and self._explainer_error is None:
                    self._build_explainer()
        if self._explainer_error is not None:
            raise self._explainer_error
        return self._explainer

    def _build_explainer(self) -> None:
        from maas_ray.explain._select import build

        started = time.perf_counter()
        where = f"version {self.version} of '{self.name}'"
        try:
            explainer, _ = build(self.model, self.background, self.input_example, where)
        except NotExplainable as exc:
            self._explainer_error = exc
            return
        logger.info(
            "built %s for model %s version %s in %.2fs",
            explainer.method,
            self.name,
            self.version,
            time.perf_counter() - started,
        )
        self._explainer = explainer

    def explain(self, data: Any, fmt: str | None = None) -> Explanations:
        """Per input row, the prediction and each feature's contribution to it (parsed
        input, checked against the signature as a predict's is); an image model's rows
        also get their saliency map, and with ``fmt="png"`` its PNG heat map (base64).

        Raises:
            BadRequest: ``fmt`` is neither None, "json" nor "png", or "png" for a
                model without saliency maps (checked before anything is explained).
        """
        png = _wants_png(fmt)
        explainer = self.explainer()
        if png and not getattr(explainer, "has_maps", lambda: False)():
            raise BadRequest(
                f"got format=png for version {self.version} of '{self.name}': a PNG draws "
                "an image model's saliency map, and this model takes no images (leave "
                "format out for its attributions)"
            )
        _lean_sklearn()
        try:
            if self.input_schema is not None:
                data = _enforce_schema(data, self.input_schema)
            found = explainer.explain(data)
            if png:
                from maas_ray.explain.saliency import heat_png_base64

                for row in found.rows:
                    if row.saliency is not None:
                        row.saliency_png = heat_png_base64(row.saliency)
        except MlflowException as exc:
            raise InvalidInput(_message(exc)) from exc
        except MaasError:
            raise
        except Exception as exc:
            logger.warning(
                "model %s v%s failed to explain an input", self.name, self.version, exc_info=True
            )
            raise PredictionFailed(
                f"model '{self.name}' version {self.version} could not explain this input: "
                f"{type(exc).__name__}: {_message(exc)}"
            ) from exc
        return found.answer(self.name, self.version)

    def explain_bytes(
        self,
        body: bytes,
        content_type: str | None,
        predictions: bool = False,
        fmt: str | None = None,
    ) -> bytes:
        """Parse a request body, explain, and encode the answer (JSON: ``Explanations``);
        ``fmt`` is the request's ``format`` query parameter (see ``explain``).

        With ``predictions`` (an OIP v2 infer's ``explain`` parameter) the answer is
        ``{"predictions": ..., "explanation": ...}``: the predict's answer for the same
        parsed input beside its explanation, so both come from this one version.
        """
        png = _wants_png(fmt)  # a bad value answers before the body is parsed
        request = self.parse(body, content_type)
        explained = self.explain(request.data, "png" if png else None)
        answer = explained.model_dump(mode="json", by_alias=True)
        if not predictions:
            return orjson.dumps(answer)
        predicted = orjson.loads(encode_predictions(self.predict(request.data, request.params)))
        return orjson.dumps({**predicted, "explanation": answer})

    def describe(self) -> dict[str, Any]:
        """Metadata a client may ask for (name, version, input and output schema, and the
        parameters a predict may pass)."""
        return {
            "name": self.name,
            "version": self.version,
            "inputs": self.input_schema.to_dict() if self.input_schema else None,
            "outputs": self.output_schema.to_dict() if self.output_schema else None,
            "params": self.params_schema.to_dict() if self.params_schema else None,
        }


def _kept(cache: ModelCache | None, uri: str, name: str, version: str, dst: Path) -> Path | None:
    """The version's verified copy on this machine at ``dst``, if the cache has one."""
    if cache is None:
        return None
    try:
        return cache.copy_to(uri, name, version, dst)
    except OSError:  # a cache folder removed meanwhile: the registry is asked instead
        logger.warning("could not read the kept copy of %s v%s", name, version, exc_info=True)
        return None


def _wants_png(fmt: str | None) -> bool:
    """Whether an explain's ``format`` asks for PNG heat maps (BadRequest: neither)."""
    if fmt is None or fmt == "json":
        return False
    if fmt == "png":
        return True
    raise BadRequest(f"got '{fmt}' for format: expected png (heat maps of images) or json")


def _enforce_schema(data: Any, schema: Schema) -> Any:
    # What PyFuncModel.predict does before the model sees its input (column order,
    # types); MLflow has no public name for it.
    from mlflow.models.utils import _enforce_schema as enforce

    return enforce(data, schema)


T = TypeVar("T")


async def bounded(work: Awaitable[T], timeout_s: float, runtime: ModelRuntime) -> T:
    """``work`` (a predict of ``runtime``'s), or PredictTimeout once it has run for
    ``timeout_s``: the caller is answered then; the model's call may still finish."""
    try:
        return await asyncio.wait_for(work, timeout_s)
    except TimeoutError:
        raise PredictTimeout(
            f"model '{runtime.name}' version {runtime.version} did not answer within "
            f"{timeout_s:g} s (MAAS_PREDICT_TIMEOUT_S, or the spec's predict_timeout_s)"
        ) from None
