"""One error tree; every error carries its HTTP status and a stable code.

    MaasError (500, internal_error)
    ├── BadRequest (400, bad_request)
    │   ├── InvalidJSON (400, invalid_json)
    │   └── JSONTooDeep (400, json_too_deep)
    ├── Unauthorized (401, unauthorized)         no credential, or not a valid one
    ├── Forbidden (403, forbidden)               a valid credential without the scope
    ├── NotFound (404, not_found)
    │   ├── ModelNotFound (404, model_not_found)
    │   ├── VersionNotDeployed (404, not_deployed)
    │   └── KeyNotFound (404, key_not_found)
    ├── MethodNotAllowed (405, method_not_allowed)  the path exists for other methods
    ├── Conflict (409, conflict)
    │   ├── InsufficientResources (409, insufficient_resources)  the cluster has no room
    │   └── DigestMismatch (409, digest_mismatch)  artifacts changed since registration
    ├── PayloadTooLarge (413, payload_too_large)
    ├── UnsupportedMediaType (415, unsupported_media_type)
    ├── InvalidInput (422, invalid_input)        input does not match the signature
    ├── PredictionFailed (422, prediction_failed) the model rejected a well-formed input
    ├── NotExplainable (422, not_explainable)    no explainer for this kind of model
    ├── DeploymentFailed (500, deployment_failed) replicas did not start; carries their error
    ├── PredictTimeout (504, predict_timeout)    a predict took longer than its limit
    ├── PlatformUnavailable (503, platform_unavailable)
    │   ├── RegistryUnavailable (503, registry_unavailable)  the MLflow server does not answer
    │   └── Overloaded (503, overloaded)        the replicas' queues are full (Retry-After)
    └── RemoteError (its status, its code)   an error answered over HTTP, for clients

One function turns any of them into the JSON answer ``{"error": message, "code":
code}`` (``http_io.py`` ``encode_error``, which masks personal data in the
message); nothing branches on message text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class MaasError(Exception):
    """Base of every maas_ray error."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code  # type: ignore[misc]

    def to_dict(self) -> dict[str, Any]:
        """The JSON body of this error, as raised (the answer masks the message)."""
        return {"error": self.message, "code": self.code}


class BadRequest(MaasError):
    status_code = 400
    code = "bad_request"


class InvalidJSON(BadRequest):
    code = "invalid_json"


class JSONTooDeep(BadRequest):
    code = "json_too_deep"


class Unauthorized(MaasError):
    """No credential, or one that is unknown, revoked, expired or badly signed."""

    status_code = 401
    code = "unauthorized"
    # RFC 6750: a 401 names the scheme the client should use.
    challenge = 'Bearer realm="maas"'


class Forbidden(MaasError):
    """A valid credential whose scopes do not cover the route."""

    status_code = 403
    code = "forbidden"


class NotFound(MaasError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"model '{name}'" if version is None else f"version {version} of model '{name}'"
        super().__init__(f"{what} not found in the registry")
        self.name = name
        self.version = version


class VersionNotDeployed(NotFound):
    code = "not_deployed"

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"model '{name}'" if version is None else f"version {version} of model '{name}'"
        super().__init__(f"{what} is not deployed")
        self.name = name
        self.version = version


class KeyNotFound(NotFound):
    code = "key_not_found"


class MethodNotAllowed(MaasError):
    """The path exists, for other methods (``allowed``: the ``Allow`` header)."""

    status_code = 405
    code = "method_not_allowed"

    def __init__(self, method: str, path: str, allowed: Sequence[str]) -> None:
        self.allowed = tuple(dict.fromkeys(m.upper() for m in allowed))
        super().__init__(f"{method} {path}: use {' or '.join(self.allowed)}")


class Conflict(MaasError):
    status_code = 409
    code = "conflict"


class InsufficientResources(Conflict):
    """An action needs replicas the cluster cannot place; nothing was changed.

    The body adds ``asked`` (what could not be placed) and ``free`` (per node).
    """

    code = "insufficient_resources"

    def __init__(
        self,
        message: str,
        *,
        asked: list[dict[str, Any]] | None = None,
        free: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.asked = asked or []
        self.free = free or []

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "asked": self.asked, "free": self.free}


class DigestMismatch(Conflict):
    """The artifacts of a version no longer hash to the digest recorded at registration."""

    code = "digest_mismatch"


class PayloadTooLarge(MaasError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedMediaType(MaasError):
    status_code = 415
    code = "unsupported_media_type"


class InvalidInput(MaasError):
    status_code = 422
    code = "invalid_input"


class PredictionFailed(MaasError):
    status_code = 422
    code = "prediction_failed"


class NotExplainable(MaasError):
    """An explain call to a model no explainer fits (``maas_ray/explain/_select.py``)."""

    status_code = 422
    code = "not_explainable"


class DeploymentFailed(MaasError):
    status_code = 500
    code = "deployment_failed"


class PredictTimeout(MaasError):
    """A predict ran past its limit (MAAS_PREDICT_TIMEOUT_S, or the spec's
    predict_timeout_s): answered at the limit; the model's call may still finish."""

    status_code = 504
    code = "predict_timeout"


class PlatformUnavailable(MaasError):
    status_code = 503
    code = "platform_unavailable"


class RegistryUnavailable(PlatformUnavailable):
    """The MLflow server (the registry and the monitoring store) does not answer: nothing
    was read or changed; the same call succeeds once it is back (`maas up` restarts it)."""

    code = "registry_unavailable"


class Overloaded(PlatformUnavailable):
    """Every replica of the model is busy and its queue (``max_queued_requests``) full:
    answered at once with ``Retry-After``, before the model's code runs."""

    code = "overloaded"

    def __init__(self, message: str = "") -> None:
        super().__init__(
            message
            or "the model's replicas are busy and their queues full (max_queued_requests); "
            "try again after the Retry-After seconds"
        )


class RemoteError(MaasError):
    """An error answered by the platform over HTTP, keeping its status and code."""

    def __init__(self, message: str, *, status_code: int, remote_code: str) -> None:
        super().__init__(message, status_code=status_code)
        self.remote_code = remote_code

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.message, "code": self.remote_code}


def answered(status: int, out: bytes) -> dict[str, Any]:
    """A replica's JSON answer over a Serve handle: its object, or, for a 4xx/5xx, the
    RemoteError an HTTP caller would get (its status and code)."""
    import orjson

    data: dict[str, Any] = orjson.loads(out)
    if status >= 400:
        raise RemoteError(
            str(data.get("error", "")),
            status_code=status,
            remote_code=str(data.get("code", "unknown")),
        )
    return data


def first_error(exc: Any, whole: str = "body", depth: int | None = None) -> tuple[str, str]:
    """A pydantic ``ValidationError``'s first error as (where, what): the field's dotted
    path (its first ``depth`` parts; ``whole`` for a check across fields) and the
    message without pydantic's "Value error, " prefix."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in tuple(first.get("loc", ()))[:depth]) or whole
    return where, str(first.get("msg", "invalid")).removeprefix("Value error, ")
