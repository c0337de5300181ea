"""The shared pool: many small models served from one set of replicas.

Models deployed with ``mode: shared`` get no Serve application of their own. The
gateway (the catch-all application at ``/``) finds them in the registry and calls
this pool over a Serve handle with ``multiplexed_model_id="name/version"``; Serve's
model multiplexing sends the request to a replica that already holds that model
when one does, and each replica keeps at most ``MAAS_SHARED_MODELS_PER_REPLICA``
models, evicting the least recently used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

from ray import serve
from ray.serve import Application

from maas_ray.errors import MaasError, PlatformUnavailable
from maas_ray.http_io import encode_error
from maas_ray.registry import Registry
from maas_ray.registry.cache import ModelCache
from maas_ray.security.log_masking import install_replica_logging
from maas_ray.serving.grpc_elsewhere import GrpcElsewhere
from maas_ray.serving.runtime import ModelRuntime, bounded
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)

# Read when a replica imports this module: Ray hands the platform's MAAS_* settings
# to every worker, and serve.multiplexed takes its bound at decoration time.
MODELS_PER_REPLICA = int(os.environ.get("MAAS_SHARED_MODELS_PER_REPLICA", "8"))


def model_id(name: str, version: str) -> str:
    """The multiplexed model id of one version."""
    return f"{name}/{version}"


class _Held:
    """One version in a pool replica's LRU. Serve calls ``__del__`` when it evicts it;
    the log line is how an operator (and the test) sees an eviction."""

    def __init__(self, runtime: ModelRuntime) -> None:
        self.runtime = runtime
        self.since = time.monotonic()
        self.unloaded = False

    def __del__(self) -> None:
        # Serve calls it on eviction; the garbage collector calls it again later.
        if not self.unloaded:
            self.unloaded = True
            logger.info(
                "unloaded model %s version %s from the shared pool after %.0fs",
                self.runtime.name,
                self.runtime.version,
                time.monotonic() - self.since,
            )


@serve.deployment(name="SharedPool", max_ongoing_requests=64)
class SharedPool(GrpcElsewhere):
    """Loads registered versions on demand (digest-checked) and keeps an LRU of them."""

    def __init__(self, tracking_uri: str) -> None:
        install_replica_logging()  # a failed predict's log record may quote the input
        self.registry = Registry(tracking_uri, answering=True)
        settings = Settings()
        self.max_depth, self.timeout_s = settings.json_max_depth, settings.predict_timeout_s
        self.explain_timeout_s = settings.explain_timeout_s
        self.cache = ModelCache.of(settings)

    @serve.multiplexed(max_num_models_per_replica=MODELS_PER_REPLICA)
    async def _load(self, mid: str) -> _Held:
        name, _, version = mid.rpartition("/")
        loop = asyncio.get_running_loop()
        runtime = await loop.run_in_executor(
            None, ModelRuntime.load, self.registry, name, version, self.max_depth, self.cache
        )
        return _Held(runtime)

    async def answer(self, body: bytes, content_type: str | None) -> tuple[int, bytes]:
        """Predict with the request's multiplexed model: (HTTP status, JSON body)."""
        mid = serve.get_multiplexed_model_id()
        try:
            runtime = (await self._load(mid)).runtime
            work = asyncio.get_running_loop().run_in_executor(
                None, runtime.predict_bytes, body, content_type
            )
            out: bytes = await bounded(work, self.timeout_s, runtime)
        except MaasError as exc:
            return exc.status_code, encode_error(exc)
        except Exception as exc:
            # The version's own code failed to load (a deploy of it fails the same way).
            logger.warning("could not load %s", mid, exc_info=True)
            failed = PlatformUnavailable(
                f"model version {mid} could not be loaded: {type(exc).__name__}: {exc}"
            )
            return failed.status_code, encode_error(failed)
        return 200, out

    async def explain(
        self,
        body: bytes,
        content_type: str | None,
        predictions: bool = False,
        fmt: str | None = None,
    ) -> tuple[int, bytes]:
        """Explain with the request's multiplexed model: (HTTP status, JSON body);
        ``predictions``: with the predictions beside, ``fmt``: the request's ``format``
        (``ModelRuntime.explain_bytes``)."""
        mid = serve.get_multiplexed_model_id()
        try:
            runtime = (await self._load(mid)).runtime
            work = asyncio.get_running_loop().run_in_executor(
                None, runtime.explain_bytes, body, content_type, predictions, fmt
            )
            out: bytes = await bounded(work, self.explain_timeout_s, runtime)
        except MaasError as exc:
            return exc.status_code, encode_error(exc)
        return 200, out

    async def describe(self) -> dict[str, Any]:
        """Name, version and input schema of the request's model."""
        held = await self._load(serve.get_multiplexed_model_id())
        return held.runtime.describe()


def build_pool(args: dict[str, Any]) -> Application:
    """Serve application builder for the shared pool (``args``: ``tracking_uri``)."""
    # serve.deployment turns the class into a Deployment; mypy still sees the class.
    return SharedPool.bind(  # type: ignore[attr-defined]
        args.get("tracking_uri") or Settings().mlflow_uri
    )
