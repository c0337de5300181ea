"""Traffic settings and logic: canary split, shadow agreement, batching settings.

Pure logic, shared by the Serve deployment and the control plane.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Canary(BaseModel):
    """Send ``percent`` of a model's traffic to ``version``; the rest to the primary."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="Challenger version.")
    percent: float = Field(ge=0, le=100, description="Share of requests it answers, 0-100.")
    sticky_header: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="Request header whose value pins a caller to one version.",
    )


class Shadow(BaseModel):
    """Mirror ``percent`` of requests to ``version``; callers only see the primary."""

    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="Challenger version.")
    percent: float = Field(default=100, ge=0, le=100, description="Share mirrored, 0-100.")


class Batching(BaseModel):
    """Dynamic batching of concurrent requests into one model call."""

    model_config = ConfigDict(extra="forbid")

    max_batch_size: int = Field(
        ge=1, le=1024, description="Most requests per model call; 1 turns batching off."
    )
    batch_wait_timeout_s: float = Field(
        default=0.005, ge=0, le=1, description="Longest wait for a batch to fill."
    )


class Traffic(BaseModel):
    """A primary's traffic settings (its deployment's user_config): at most one side."""

    model_config = ConfigDict(extra="forbid")

    canary: Canary | None = None
    shadow: Shadow | None = None


# A canary or shadow runs as a Serve application of its own, next to its primary's,
# so starting or ending one never restarts the primary: the split reaches the
# primary's replicas as user_config (a reconfigure). '~' cannot occur in a model
# name, so the name never clashes with a model's application.
CHALLENGER_SUFFIX = "~challenger"


def challenger_app(model: str) -> str:
    """The name of the Serve application that runs ``model``'s canary or shadow."""
    return model + CHALLENGER_SUFFIX


def to_challenger(percent: float, sticky_value: str | None = None) -> bool:
    """Whether one request goes to the canary.

    With a sticky value (a header), the same value always gets the same answer:
    its SHA-256 picks a point in [0, 100).
    """
    if percent <= 0:
        return False
    if percent >= 100:
        return True
    if sticky_value is None:
        return random.random() * 100 < percent
    point = int.from_bytes(hashlib.sha256(sticky_value.encode()).digest()[:8], "big")
    return (point / 2**64) * 100 < percent


def agreement(primary: list[Any], challenger: list[Any]) -> tuple[int, int]:
    """(rows that agree, rows compared) between two prediction lists.

    Labels must be equal; numbers (also inside lists or dicts) agree within a
    relative 1e-3 (absolute 1e-6), so float noise between versions is not disagreement.
    """
    if len(primary) != len(challenger):
        return 0, max(len(primary), len(challenger))
    same = sum(1 for a, b in zip(primary, challenger, strict=True) if _close(a, b))
    return same, len(primary)


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return math.isclose(a, b, rel_tol=1e-3, abs_tol=1e-6)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    return bool(a == b)
