"""The Open Inference Protocol's gRPC methods on every application but the gateway.

Ray starts a gRPC server in each application's ingress replica and routes a call by its
``application`` metadata, so a call can name a model's application (or the management
API's) instead of the gateway's. Without methods of the RPCs' names, Ray answers such a
call with UNKNOWN and a list of the replica class's methods. With these, the caller gets
UNIMPLEMENTED and where to send the call instead.
"""

from __future__ import annotations

from typing import Any

import grpc

from maas_ray.serving.proto import predict_v2_pb2 as pb
from maas_ray.spec import GATEWAY_APP

ELSEWHERE = (
    "this application does not answer the Open Inference Protocol over gRPC: send the "
    f"metadata 'application: {GATEWAY_APP}'"
)


def _refuse(grpc_context: Any, reply: Any) -> Any:
    grpc_context.set_code(grpc.StatusCode.UNIMPLEMENTED)
    grpc_context.set_details(ELSEWHERE)
    return reply


class GrpcElsewhere:
    """Mixed into the ingress classes of the applications that are not the gateway."""

    async def ServerLive(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ServerLiveResponse())

    async def ServerReady(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ServerReadyResponse())

    async def ServerMetadata(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ServerMetadataResponse())

    async def ModelReady(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ModelReadyResponse())

    async def ModelMetadata(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ModelMetadataResponse())

    async def ModelInfer(self, request: Any, grpc_context: Any) -> Any:
        return _refuse(grpc_context, pb.ModelInferResponse())
