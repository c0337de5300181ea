"""Scopes: what a credential may do, and which scope each HTTP route needs.

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

ADMIN = "admin"
PLAIN = frozenset({"register", "deploy", "train", "metrics", ADMIN})
PER_MODEL = ("predict", "feedback")
PUBLIC_PATHS = frozenset({"/healthz", "/v2/health/live", "/v2/health/ready"})
_MODEL = re.compile(r"^(\*|[A-Za-z0-9][A-Za-z0-9._-]{0,127})$")
# Routes that read the platform's state: any of these scopes will do.
READERS = ("metrics", "deploy", "register")
AUTHENTICATED: tuple[str, ...] = ()  # any valid credential, no particular scope


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

    Unknown routes need a valid credential too, so a stranger cannot tell a
    missing route from a forbidden one.
    """
    if path in PUBLIC_PATHS:
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "v1" and parts[1] == "models":
        name, rest = parts[2], parts[3:]
        if len(rest) >= 2 and rest[0] == "versions":
            rest = rest[2:]
        if rest in ([], ["predict"]):
            return (f"predict:{name}",)
        if rest == ["feedback"]:
            return (f"feedback:{name}",)
        if rest == ["traffic"]:
            return ("metrics",)
        return AUTHENTICATED
    if parts[:2] == ["v1", "admin"]:
        return _admin_scopes(method, parts[2:])
    if parts == ["metrics"]:
        return ("metrics",)
    return AUTHENTICATED


def _admin_scopes(method: str, rest: list[str]) -> tuple[str, ...]:
    if rest[:1] in (["keys"], ["audit"]):
        return (ADMIN,)
    if rest[:1] == ["train"]:
        return ("train",)
    if method == "GET":
        return READERS
    if len(rest) == 3 and rest[0] == "models" and rest[2] == "versions":
        return ("register",)
    return ("deploy",)
