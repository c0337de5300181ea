"""A primary replica's link to its canary or shadow, and what the split has done.

``ModelServer`` owns one ``TrafficSplit``: the replica keeps HTTP and the model
calls; this holds the split set by reconfigure (user_config), the handle to the
challenger's application, the forwarding decision, the shadow's mirror queue and
the counts ``stats`` reports. On a shadow's own replica only ``record`` is used.
Which request goes where is the pure logic of ``traffic.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import orjson
from ray import serve
from ray.serve.handle import DeploymentHandle

from maas_ray.serving.traffic import agreement, to_challenger
from maas_ray.spec import Canary, Shadow, Traffic, challenger_app

logger = logging.getLogger(__name__)

MIRROR_EVERY_S = 0.05
MIRROR_QUEUE_MAX = 1000

Mirrored = tuple[bytes, str | None, bytes, str]
"""One mirrored request: (body, content type, the primary's answer, request id)."""


class TrafficSplit:
    """The canary or shadow of one replica's model, reached through a Serve handle.

    With a canary it forwards a share of the requests there; with a shadow it
    mirrors a share there after the primary answered, and the challenger records
    how often the two agree. Made in the replica's ``__init__``; the handle is looked
    up on first use and the flusher task started by the first mirrored request, both
    inside the replica's running event loop.
    """

    def __init__(self, model: str, primary: str) -> None:
        """A split with no challenger yet.

        Args:
            model: the registered model's name (its challenger app is named after it).
            primary: the version this replica serves.
        """
        self.model = model
        self.primary = primary
        self.canary: Canary | None = None  # set by reconfigure (user_config)
        self.shadow: Shadow | None = None
        self._handle: DeploymentHandle | None = None  # made on first use
        self._next_lookup = 0.0
        self.answered: Counter[str] = Counter()  # version -> requests answered here
        self.agreement = {"requests": 0, "rows": 0, "agree": 0, "errors": 0, "dropped": 0}
        self._queue: list[Mirrored] = []  # waiting for the shadow
        self._flusher: asyncio.Task[None] | None = None

    def reconfigure(self, traffic: Traffic) -> None:
        """Take the split from a new user_config; no new replica, no new handle."""
        self.canary, self.shadow = traffic.canary, traffic.shadow
        if self.canary is None and self.shadow is None:
            self._handle = None  # a later canary gets a handle of its own

    @property
    def version(self) -> str | None:
        """The canary's or shadow's version, None while neither is set."""
        spec = self.canary or self.shadow
        return spec.version if spec else None

    @property
    def handle(self) -> DeploymentHandle | None:
        """A handle to the canary's or shadow's application while one is set."""
        if self.canary is None and self.shadow is None:
            return None
        if self._handle is None and time.monotonic() >= self._next_lookup:
            # Until the challenger's application exists (a restore starts both at
            # once), this primary answers everything itself; looked up once a second.
            self._next_lookup = time.monotonic() + 1.0
            try:
                self._handle = serve.get_deployment_handle(
                    "ModelServer", app_name=challenger_app(self.model)
                )
            except Exception:
                logger.info("the challenger of %s is not there yet", self.model)
        return self._handle

    def pick(self, target: str | None, headers: Mapping[str, str]) -> str | None:
        """The challenger version that should answer a predict; None: the primary.

        Args:
            target: the version the path names, None where the split decides.
            headers: the request's headers (a canary may be sticky by one).
        """
        spec = self.canary or self.shadow
        if spec is None:
            return None  # no split, the common case: decided without another call
        challenger = spec.version
        if target is None and self.canary is not None and self.handle is not None:
            sticky = headers.get(self.canary.sticky_header or "") or None
            if to_challenger(self.canary.percent, sticky):
                target = challenger
        if target == challenger and self.handle is not None:
            return challenger
        return None

    async def forward(
        self, body: bytes, ctype: str | None, request_id: str | None = None
    ) -> tuple[int | None, bytes]:
        """The challenger's (HTTP status, JSON body); status None: the primary answers."""
        assert self.handle is not None
        try:
            status, out = await self.handle.answer.remote(body, ctype, request_id)
            return status, out
        except Exception:
            # The challenger is going away (promote or rollback under way): the
            # primary answers instead of failing the request.
            logger.warning("challenger of %s did not answer", self.model, exc_info=True)
            return None, b""

    def mirror(self, body: bytes, ctype: str | None, primary: bytes, request_id: str) -> None:
        """After the primary answered: queue the request for the shadow, for its share."""
        if self.shadow is not None and self.handle is not None:
            if to_challenger(self.shadow.percent):
                self._enqueue(body, ctype, primary, request_id)

    def _enqueue(self, body: bytes, ctype: str | None, primary: bytes, request_id: str) -> None:
        """Queue one request for the shadow; a flusher sends the queue every MIRROR_EVERY_S.

        One handle call per batch instead of per request keeps the mirror's cost
        off the caller's path; past MIRROR_QUEUE_MAX queued requests, new ones are
        dropped (and counted) rather than slowing the primary down.
        """
        if len(self._queue) >= MIRROR_QUEUE_MAX:
            self.agreement["dropped"] += 1
            return
        self._queue.append((body, ctype, primary, request_id))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        assert self.handle is not None
        while self._queue:
            await asyncio.sleep(MIRROR_EVERY_S)
            batch, self._queue = self._queue, []
            try:
                await self.handle.compare.remote(batch)
            except Exception:
                logger.warning("shadow of %s failed", self.model, exc_info=True)

    def record(self, status: int, primary: bytes, out: bytes) -> None:
        """Shadow side: count one mirrored request, its answer against the primary's.

        Args:
            status: the HTTP status this (the shadow's) replica answered.
            primary: the primary's JSON answer.
            out: this replica's JSON answer.
        """
        # Counted only once compared, so a reader never sees a request without its rows.
        self.agreement["requests"] += 1
        if status != 200:
            self.agreement["errors"] += 1
            return
        same, rows = agreement(
            orjson.loads(primary)["predictions"], orjson.loads(out)["predictions"]
        )
        self.agreement["agree"] += same
        self.agreement["rows"] += rows

    def stats(self) -> dict[str, Any]:
        """What this replica saw: answers by version, and shadow agreement."""
        return {"answered": dict(self.answered), "shadow": dict(self.agreement)}

    async def report(self) -> dict[str, Any]:
        """The traffic route's answer: the split, answers here, the shadow's agreement."""
        out: dict[str, Any] = {
            "model": self.model,
            "primary": self.primary,
            "canary": self.canary.model_dump() if self.canary else None,
            "shadow": self.shadow.model_dump() if self.shadow else None,
            "answered": dict(self.answered),
        }
        if self.shadow is not None and self.handle is not None:
            out["agreement"] = (await self.handle.stats.remote())["shadow"]
            out["agreement"]["dropped"] = self.agreement["dropped"]  # queue full here
        return out
