"""The SDK's long actions: deploy, undeploy, promote, rollback, canary, shadow, apply.

Each one is an operation on the platform. By default the call waits for it and
returns its result (each step goes to ``progress``); ``wait=False`` returns the
``Operation`` at once, for ``MaaS.wait(op)`` or ``MaaS.operation(op.id)`` later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from maas_ray.control.status import ModelStatus, Operation
from maas_ray.spec import Canary, DeploymentFile, DeploymentSpec, Shadow
from maas_ray.wire import PRODUCTION

if TYPE_CHECKING:
    from maas_ray.transport import Transport

Progress = Callable[[str], None]


class Lifecycle:
    """Mixed into ``MaaS``; needs its ``_http`` transport."""

    _http: Transport

    def _act(self, route: str, body: Any, progress: Progress | None, wait: bool, **kw: Any) -> Any:
        return self._http.admin(route, body, progress, wait=wait, **kw)

    @overload
    def deploy(
        self,
        name: str,
        version: str | int | None = ...,
        *,
        alias: str | None = ...,
        progress: Progress | None = ...,
        timeout_s: int | None = ...,
        wait: Literal[True] = ...,
        **options: Any,
    ) -> ModelStatus: ...
    @overload
    def deploy(
        self,
        name: str,
        version: str | int | None = ...,
        *,
        alias: str | None = ...,
        progress: Progress | None = ...,
        timeout_s: int | None = ...,
        wait: Literal[False],
        **options: Any,
    ) -> Operation: ...
    def deploy(
        self,
        name: str,
        version: str | int | None = None,
        *,
        alias: str | None = None,
        progress: Progress | None = None,
        timeout_s: int | None = None,
        wait: bool = True,
        **options: Any,
    ) -> ModelStatus | Operation:
        """Serve a version of ``name`` and wait until it answers.

        ``options`` are DeploymentSpec fields: ``num_replicas``, ``min_replicas``,
        ``max_replicas``, ``num_cpus``, ``num_gpus``, ``max_ongoing_requests``,
        ``max_queued_requests``, ``predict_timeout_s``, ``batching``, ...
        ``timeout_s``: give up after this long (at most the platform's deploy
        timeout) and put back what ran before.
        """
        spec = DeploymentSpec(
            model=name, version=None if version is None else str(version), alias=alias, **options
        )
        body = spec.model_dump(exclude_none=True, exclude={"model"})
        params = None if timeout_s is None else {"timeout_s": timeout_s}
        answer = self._http.admin("deploy", body, progress, params, wait=wait, name=name)
        return answer if isinstance(answer, Operation) else ModelStatus.model_validate(answer)

    @overload
    def undeploy(
        self, name: str, progress: Progress | None = ..., *, wait: Literal[True] = ...
    ) -> None: ...
    @overload
    def undeploy(
        self, name: str, progress: Progress | None = ..., *, wait: Literal[False]
    ) -> Operation: ...
    def undeploy(
        self, name: str, progress: Progress | None = None, *, wait: bool = True
    ) -> Operation | None:
        """Stop serving ``name`` (its versions stay registered)."""
        answer = self._act("undeploy", None, progress, wait, name=name)
        return answer if isinstance(answer, Operation) else None

    @overload
    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = ...,
        progress: Progress | None = ...,
        *,
        wait: Literal[True] = ...,
    ) -> ModelStatus | None: ...
    @overload
    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = ...,
        progress: Progress | None = ...,
        *,
        wait: Literal[False],
    ) -> Operation: ...
    def promote(
        self,
        name: str,
        version: str | int,
        alias: str = PRODUCTION,
        progress: Progress | None = None,
        *,
        wait: bool = True,
    ) -> ModelStatus | Operation | None:
        """Point ``alias`` at ``version``; the deployment following it switches, no request lost."""
        body = {"version": str(version), "alias": alias}
        return _row(self._act("promote", body, progress, wait, name=name))

    @overload
    def rollback(
        self,
        name: str,
        alias: str = ...,
        progress: Progress | None = ...,
        *,
        wait: Literal[True] = ...,
    ) -> ModelStatus | None: ...
    @overload
    def rollback(
        self, name: str, alias: str = ..., progress: Progress | None = ..., *, wait: Literal[False]
    ) -> Operation: ...
    def rollback(
        self,
        name: str,
        alias: str = PRODUCTION,
        progress: Progress | None = None,
        *,
        wait: bool = True,
    ) -> ModelStatus | Operation | None:
        """End a canary/shadow, or move ``alias`` back to the version it had before."""
        return _row(self._act("rollback", {"alias": alias}, progress, wait, name=name))

    @overload
    def canary(
        self,
        name: str,
        version: str | int,
        percent: float,
        *,
        sticky_header: str | None = ...,
        progress: Progress | None = ...,
        wait: Literal[True] = ...,
    ) -> ModelStatus: ...
    @overload
    def canary(
        self,
        name: str,
        version: str | int,
        percent: float,
        *,
        sticky_header: str | None = ...,
        progress: Progress | None = ...,
        wait: Literal[False],
    ) -> Operation: ...
    def canary(
        self,
        name: str,
        version: str | int,
        percent: float,
        *,
        sticky_header: str | None = None,
        progress: Progress | None = None,
        wait: bool = True,
    ) -> ModelStatus | Operation:
        """Send ``percent`` of ``name``'s traffic to ``version``."""
        side = Canary(version=str(version), percent=percent, sticky_header=sticky_header)
        answer = self._act("canary", side.model_dump(exclude_none=True), progress, wait, name=name)
        return answer if isinstance(answer, Operation) else ModelStatus.model_validate(answer)

    @overload
    def shadow(
        self,
        name: str,
        version: str | int,
        percent: float = ...,
        progress: Progress | None = ...,
        *,
        wait: Literal[True] = ...,
    ) -> ModelStatus: ...
    @overload
    def shadow(
        self,
        name: str,
        version: str | int,
        percent: float = ...,
        progress: Progress | None = ...,
        *,
        wait: Literal[False],
    ) -> Operation: ...
    def shadow(
        self,
        name: str,
        version: str | int,
        percent: float = 100,
        progress: Progress | None = None,
        *,
        wait: bool = True,
    ) -> ModelStatus | Operation:
        """Mirror ``percent`` of ``name``'s traffic to ``version`` (callers see the primary)."""
        body = Shadow(version=str(version), percent=percent).model_dump()
        answer = self._act("shadow", body, progress, wait, name=name)
        return answer if isinstance(answer, Operation) else ModelStatus.model_validate(answer)

    @overload
    def apply(
        self,
        document: dict[str, Any],
        progress: Progress | None = ...,
        *,
        wait: Literal[True] = ...,
    ) -> dict[str, str]: ...
    @overload
    def apply(
        self, document: dict[str, Any], progress: Progress | None = ..., *, wait: Literal[False]
    ) -> Operation: ...
    def apply(
        self, document: dict[str, Any], progress: Progress | None = None, *, wait: bool = True
    ) -> dict[str, str] | Operation:
        """Apply a ``maas apply`` document (``kind: MaasDeployments``); see DeploymentFile."""
        body = DeploymentFile.model_validate(document).model_dump(exclude_none=True)
        answer = self._act("apply", body, progress, wait)
        return answer if isinstance(answer, Operation) else dict(answer)


def _row(answer: Any) -> Any:
    """The status row in a promote/rollback answer (None: the alias moved only)."""
    if isinstance(answer, Operation):
        return answer
    row = answer.get("status")
    return ModelStatus.model_validate(row) if row else None
