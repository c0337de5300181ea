"""The Open Inference Protocol v2 over gRPC (``inference.GRPCInferenceService``).

Ray Serve's gRPC ingress calls the gateway's methods of the same names (``Gateway``
in ``gateway/app.py`` hands each to this class). Ray routes a gRPC call by its
``application`` metadata when several applications run, so clients send
``application: maas-gateway`` beside ``authorization: Bearer <key>``.

Each RPC borrows the scope of its REST twin in the route table (ModelInfer:
``POST /v2/models/{name}/infer``, so ``predict:{name}``), and the REST path's code
does the work (``gateway/oip_front.py``): the same canary split, shadow, validation,
prediction log and answers. Errors are gRPC statuses (``oip_grpc.STATUS``) with the
REST error's message as details; the request id and the version that answered come
back as trailing metadata.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import grpc
import orjson

from maas_ray.errors import BadRequest, MaasError, NotFound
from maas_ray.gateway.oip_front import server_metadata
from maas_ray.routes import match, url
from maas_ray.serving import oip_grpc
from maas_ray.serving.proto import predict_v2_pb2 as pb
from maas_ray.wire import REQUEST_ID_HEADER, VERSION_HEADER

if TYPE_CHECKING:
    from maas_ray.gateway.app import Gateway

logger = logging.getLogger(__name__)
INLINE_MAX = 64 * 1024  # larger requests are decoded in a thread
# Each model RPC's REST twin (route, version twin, method): its scope guards the RPC.
TWINS = {
    "ModelInfer": ("v2_infer", "v2_infer_version", "POST"),
    "ModelMetadata": ("v2_model", "v2_version", "GET"),
    "ModelReady": ("v2_model_ready", "v2_version_ready", "GET"),
}
EMPTY = {
    "ModelInfer": pb.ModelInferResponse,
    "ModelMetadata": pb.ModelMetadataResponse,
    "ModelReady": pb.ModelReadyResponse,
}


class GrpcFront:
    """The six RPCs; ``gateway`` lends its guard and its REST OIP front."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    # -- server RPCs (no credential, as their REST twins) ------------------------------
    async def server_live(self) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=True)

    async def server_ready(self) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=await self.gateway.oip.server_unready() is None)

    async def server_metadata(self) -> pb.ServerMetadataResponse:
        return pb.ServerMetadataResponse(**server_metadata())

    # -- model RPCs ---------------------------------------------------------------------
    async def model_ready(self, request: pb.ModelReadyRequest, context: Any) -> Any:
        async def run(metadata: dict[str, str]) -> pb.ModelReadyResponse:
            why = await self.gateway.oip.model_unready(request.name, request.version or None)
            return pb.ModelReadyResponse(ready=why is None)

        return await self._guarded("ModelReady", request.name, request.version, context, run)

    async def model_metadata(self, request: pb.ModelMetadataRequest, context: Any) -> Any:
        async def run(metadata: dict[str, str]) -> pb.ModelMetadataResponse:
            doc = await self.gateway.oip.metadata(request.name, request.version or None)
            return oip_grpc.metadata_response(doc)

        return await self._guarded("ModelMetadata", request.name, request.version, context, run)

    async def model_infer(self, request: pb.ModelInferRequest, context: Any) -> Any:
        name, asked = request.model_name, request.model_version or None

        async def run(metadata: dict[str, str]) -> pb.ModelInferResponse:
            front = self.gateway.oip
            target = await front.target(name)
            if request.ByteSize() > INLINE_MAX:
                loop = asyncio.get_running_loop()
                decoded = await loop.run_in_executor(None, oip_grpc.decode, request)
            else:
                decoded = oip_grpc.decode(request)
            request_id = metadata.get(REQUEST_ID_HEADER) or str(uuid.uuid4())
            done = await front.infer(name, asked, target, decoded, request_id, metadata)
            trailing = [(REQUEST_ID_HEADER, request_id), (VERSION_HEADER, done.version)]
            context.set_trailing_metadata(trailing)
            if done.status != 200:
                raise _Refused(done.status, done.out)
            return oip_grpc.infer_response(
                done.predictions,
                name,
                done.version,
                decoded,
                done.outputs_schema,
                done.explanation,
            )

        return await self._guarded("ModelInfer", name, request.model_version, context, run)

    async def _guarded(
        self,
        rpc: str,
        name: str,
        version: str,
        context: Any,
        run: Callable[[dict[str, str]], Awaitable[Any]],
    ) -> Any:
        """``run`` (given the call's metadata) once the caller holds the scope of ``rpc``'s
        REST twin; a refusal or an error is the call's gRPC status (and an empty reply)."""
        try:
            if not name:
                raise BadRequest("the model name is empty")
            route, twin, method = TWINS[rpc]
            path = url(twin, name=name, version=version) if version else url(route, name=name)
            found = match(method, path)
            known = found.route is not None and found.route.name in (route, twin)
            if not known or found.params.get("name") != name:
                raise NotFound(f"no model route for '{name[:80]}' version '{version[:40]}'")
            metadata = dict(context.invocation_metadata())
            self.gateway.guard.check(method, path, metadata.get("authorization"), found)
            return await run(metadata)
        except _Refused as exc:
            _fail(context, exc.status, exc.message)
        except MaasError as exc:
            _fail(context, exc.status_code, str(exc))
        except Exception:
            logger.exception("unexpected error in %s for %s", rpc, name[:80])
            context.set_code(grpc.StatusCode.INTERNAL)
            context.set_details("unexpected server error; the gateway's log has the trace")
        return EMPTY[rpc]()


class _Refused(Exception):
    """A model's own refusal (the v1 JSON error), carried out of ``run``."""

    def __init__(self, status: int, body: bytes) -> None:
        try:
            message = str(orjson.loads(body).get("error", ""))
        except (orjson.JSONDecodeError, AttributeError):
            message = body[:300].decode("utf-8", "replace")
        super().__init__(message)
        self.status, self.message = status, message


def _fail(context: Any, status: int, message: str) -> None:
    context.set_code(oip_grpc.status_of(status))
    context.set_details(message[:1000])
