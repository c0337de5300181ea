"""Scopes: what a credential may do (each route's scopes are in ``maas_ray/routes/``).

    predict:NAME  predict:*     predict with (and read the metadata of) one model / any model
    feedback:NAME feedback:*    send ground truth for one model / any model
    register                    register new versions
    deploy                      deploy, undeploy, promote, roll back, canary, shadow, apply
    train                       start training and fine-tuning jobs
    metrics                     read status, history, traffic and metrics
    admin                       everything, including keys and the audit log

Pure logic: no I/O, used by every replica on every request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from maas_ray.errors import InvalidInput
from maas_ray.routes import match

ADMIN = "admin"
PLAIN = frozenset({"register", "deploy", "train", "metrics", ADMIN})
PER_MODEL = ("predict", "feedback")
_MODEL = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")


def check_scope(scope: str) -> str:
    """``scope`` if it is one maas_ray knows, else InvalidInput naming the choices."""
    kind, sep, model = scope.partition(":")
    if (not sep and scope in PLAIN) or (sep and kind in PER_MODEL and _MODEL.match(model)):
        return scope
    raise InvalidInput(
        f"got '{scope}' for a scope: use predict:NAME, predict:*, feedback:NAME, feedback:*, "
        + ", ".join(sorted(PLAIN))
    )


@dataclass(frozen=True)
class Principal:
    """Who is asking: a key or a token subject, with its scopes."""

    name: str  # "key:<name>", "jwt:<sub>" or "anonymous"
    scopes: frozenset[str] = field(default_factory=frozenset)
    key_id: str | None = None

    def allows(self, required: tuple[str, ...]) -> bool:
        """True when one of ``required`` is covered (an empty tuple: any credential)."""
        if not required or ADMIN in self.scopes:
            return True
        for scope in required:
            if scope in self.scopes:
                return True
            kind, sep, _ = scope.partition(":")
            if sep and f"{kind}:*" in self.scopes:
                return True
        return False


def required_scopes(method: str, path: str) -> tuple[str, ...] | None:
    """The scopes of which one opens ``method path``; None for a public route.

    From the route table (``maas_ray/routes/``). Unknown routes need a valid
    credential too, so a stranger cannot tell a missing route from a forbidden one.
    """
    return match(method, path).required
