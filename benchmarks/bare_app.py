"""The ceiling: a bare Starlette app that calls ``model.predict`` and nothing else.

No validation beyond what the model's own pyfunc does, no metrics, no version
header: what one Python process can do with the same registered version.
Run by ``benchmarks/serving.py`` under uvicorn (1 worker, no access log) with
``BARE_MODEL_URI`` (``models:/NAME/VERSION``) and ``MLFLOW_TRACKING_URI`` set.
"""

from __future__ import annotations

import os

import mlflow.pyfunc
import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MODEL = mlflow.pyfunc.load_model(os.environ["BARE_MODEL_URI"])
_schema = MODEL.metadata.get_input_schema()
_types = _schema.numpy_types() if _schema is not None and _schema.is_tensor_spec() else [None]
# Text tensors: numpy picks the width (<U...), as MLflow's own parser does.
DTYPE = None if _types[0] is None or _types[0].kind in "USO" else _types[0]


async def predict(request: Request) -> Response:
    rows = orjson.loads(await request.body())["inputs"]
    out = MODEL.predict(np.asarray(rows, dtype=DTYPE))
    if isinstance(out, np.ndarray) and out.dtype.kind not in "biuf":
        out = out.tolist()  # orjson writes numeric arrays only
    return Response(
        orjson.dumps({"predictions": out}, option=orjson.OPT_SERIALIZE_NUMPY),
        media_type="application/json",
    )


async def ping(request: Request) -> Response:
    return Response(b"ok")


app = Starlette(routes=[Route("/invocations", predict, methods=["POST"]), Route("/ping", ping)])
