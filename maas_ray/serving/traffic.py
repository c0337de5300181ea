"""Traffic logic: which requests a canary answers, how often a shadow agrees.

Pure logic, used by the replica (the settings themselves are in ``maas_ray/spec.py``).
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any


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
