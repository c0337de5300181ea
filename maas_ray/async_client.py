"""The SDK for asyncio code: ``from maas_ray import AsyncMaaS``.

Predict, feedback and the read calls of ``MaaS`` as coroutines over one
``httpx.AsyncClient``, with the same credential, typed answers, errors and retries
(see ``transport.py``). Changes (register, deploy, promote, train, ...) stay in the
synchronous ``MaaS``: they are few, and most wait for an operation anyway::

    async with AsyncMaaS() as maas:
        answers = await asyncio.gather(*(maas.predict("tabular", [row]) for row in rows))
"""

from __future__ import annotations

from typing import Any

import orjson

from maas_ray.client import explain_call, handles_for, predict_call, wrap_inputs
from maas_ray.control.status import ModelStatus, NodeResources, Operation
from maas_ray.explain.answer import Explanations
from maas_ray.monitoring.models import FeedbackAnswer, MonitoringReport, RetrainState
from maas_ray.registry.models import HistoryEvent, ModelInfo, VersionInfo
from maas_ray.routes import url
from maas_ray.settings import Settings
from maas_ray.training.result import JobInfo
from maas_ray.transport import AsyncTransport
from maas_ray.wire import JSON, REQUEST_ID_HEADER, VERSION_HEADER


class AsyncMaaS:
    """Predict and read a maas_ray platform from asyncio code.

    Args:
        settings: Platform settings; by default read from ``MAAS_*`` variables.
        in_cluster: Predict over Serve handles (``maas_ray/in_cluster.py``) instead of
            HTTP; by default when this runs in a Ray task or actor.
        **overrides: Individual settings, e.g. ``serve_port=8001``.
    """

    def __init__(
        self, settings: Settings | None = None, *, in_cluster: bool | None = None, **overrides: Any
    ) -> None:
        self.settings = settings or Settings(**overrides)
        self._http = AsyncTransport(self.settings)
        self._handles = handles_for(in_cluster)

    # -- predict and feedback -------------------------------------------------------
    async def predict(
        self,
        name: str,
        inputs: Any = None,
        *,
        payload: dict[str, Any] | None = None,
        version: str | int | None = None,
        request_id: str | None = None,
    ) -> list[Any]:
        """``MaaS.predict``: the predictions of ``inputs`` (or of a ready ``payload``)."""
        body = payload if payload is not None else wrap_inputs(inputs)
        if self._handles is not None:
            pinned = None if version is None else str(version)
            answer = await self._handles.apredict(name, body, pinned, request_id)
            return list(answer["predictions"])
        answer = await self.predict_raw(
            name,
            orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            JSON,
            version,
            request_id=request_id,
        )
        predictions: list[Any] = answer["predictions"]
        return predictions

    async def predict_raw(
        self,
        name: str,
        body: bytes,
        content_type: str,
        version: str | int | None = None,
        *,
        request_id: str | None = None,
    ) -> dict[str, Any]:
        """``MaaS.predict_raw``: the JSON answer plus ``version`` and ``request_id``."""
        path, headers = predict_call(name, content_type, version, request_id)
        data, resp = await self._http.send(
            "POST", path, content=body, headers=headers, idempotent=True
        )
        data["version"] = resp.headers.get(VERSION_HEADER)
        data["request_id"] = resp.headers.get(REQUEST_ID_HEADER)
        return data

    async def explain(
        self,
        name: str,
        inputs: Any = None,
        *,
        payload: dict[str, Any] | None = None,
        version: str | int | None = None,
        png: bool = False,
    ) -> Explanations:
        """``MaaS.explain``: per row, the prediction and each feature's contribution."""
        body = payload if payload is not None else wrap_inputs(inputs)
        path, headers, params = explain_call(name, version, png)
        data, _ = await self._http.send(
            "POST",
            path,
            content=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
            headers=headers,
            params=params,
            idempotent=True,
        )
        return Explanations.model_validate(data)

    async def feedback(
        self, name: str, labels: dict[str, Any] | list[dict[str, Any]]
    ) -> FeedbackAnswer:
        """``MaaS.feedback``: ground truth for earlier predictions, by request id."""
        data, _ = await self._http.send(
            "POST",
            url("feedback", name=name),
            content=orjson.dumps(labels),
            headers={"content-type": JSON},
            idempotent=True,
        )
        return FeedbackAnswer.model_validate(data)

    async def monitoring(
        self, name: str, window_s: float | None = None, buckets: int = 0
    ) -> MonitoringReport:
        """``MaaS.monitoring``: per version and arm, traffic and quality."""
        params: dict[str, Any] = {} if window_s is None else {"window_s": window_s}
        if buckets:
            params["buckets"] = buckets
        data, _ = await self._http.send("GET", url("monitoring", name=name), params=params)
        return MonitoringReport.model_validate(data)

    # -- reads ----------------------------------------------------------------------
    async def status(self) -> list[ModelStatus]:
        """One row per deployed model."""
        return [ModelStatus.model_validate(r) for r in await self._http.admin("status")]

    async def cluster(self) -> list[NodeResources]:
        """The Ray cluster's nodes."""
        return [NodeResources.model_validate(n) for n in await self._http.admin("cluster")]

    async def models(self) -> list[ModelInfo]:
        """Every registered model."""
        return [ModelInfo.model_validate(m) for m in await self._http.admin("list_models")]

    async def model(self, name: str) -> ModelInfo:
        """One registered model with its versions."""
        return ModelInfo.model_validate(await self._http.admin("show_model", name=name))

    async def versions(self, name: str) -> list[VersionInfo]:
        """The versions of ``name``, newest first."""
        return (await self.model(name)).versions

    async def history(self, name: str) -> list[HistoryEvent]:
        """Every alias move and deploy action of ``name``, oldest first."""
        events = await self._http.admin("history", name=name)
        return [HistoryEvent.model_validate(e) for e in events]

    async def operations(self) -> list[Operation]:
        """The newest management operations, newest first."""
        return [Operation.model_validate(o) for o in await self._http.admin("operations")]

    async def operation(self, op_id: str) -> Operation:
        """One operation as the platform has it now."""
        return Operation.model_validate(await self._http.admin("operation", op_id=op_id))

    async def jobs(self) -> list[JobInfo]:
        """Ray jobs on the platform's cluster, newest first."""
        return [JobInfo.model_validate(j) for j in await self._http.admin("jobs")]

    async def job(self, job_id: str) -> JobInfo:
        """One job: status, stage, and the result of a finished training."""
        return JobInfo.model_validate(await self._http.admin("job", job_id=job_id))

    async def retraining(self, name: str) -> RetrainState:
        """The last retrain of ``name``."""
        return RetrainState.model_validate(await self._http.admin("retrain_state", name=name))

    # -- lifetime -------------------------------------------------------------------
    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncMaaS:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
