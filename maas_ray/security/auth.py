"""The check every replica runs before anything else: who asks, and may they.

``Guard.check(method, path, authorization)`` (the scopes from the route table)
returns the caller's Principal or
raises Unauthorized (401: no credential, or not a valid one) or Forbidden (403:
valid, but its scopes do not cover the route).
"""

from __future__ import annotations

import logging

from maas_ray.errors import Forbidden, Unauthorized
from maas_ray.routes import Match, match
from maas_ray.security.keys import KeyCache, KeyStore, key_id
from maas_ray.security.scopes import ADMIN, Principal
from maas_ray.security.tokens import TokenVerifier
from maas_ray.settings import Settings

logger = logging.getLogger(__name__)

ANONYMOUS = Principal(name="anonymous")
OPEN = Principal(name="anonymous (MAAS_AUTH=off)", scopes=frozenset({ADMIN}))
AUTH_OFF_WARNING = (
    "MAAS_AUTH=off: every route is open to anyone who can reach it; "
    "use this for local experiments only"
)


class Guard:
    """Authenticates and authorises one request; one per replica."""

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.auth == "on"
        self.keys = KeyCache(KeyStore(settings.security_db_url), settings.auth_refresh_s)
        self.tokens = TokenVerifier(
            settings.jwt_secret.get_secret_value() if settings.jwt_secret else None,
            settings.jwt_jwks,
            settings.jwt_audience,
            settings.jwt_issuer,
        )
        if self.enabled:
            # Read now: a replica is sent requests the moment it joins, and its first
            # ones should not wait for the database's connection and first read.
            self.keys.refresh()
        else:
            logger.warning(AUTH_OFF_WARNING)

    def check(
        self, method: str, path: str, authorization: str | None, found: Match | None = None
    ) -> Principal:
        """The caller of ``method path``; raises Unauthorized or Forbidden.

        ``found``: the path already matched against the route table (saves a match).
        """
        required = (found or match(method, path)).required
        if required is None:
            return ANONYMOUS
        if not self.enabled:
            return OPEN
        principal = self.identify(authorization)
        if not principal.allows(required):
            raise Forbidden(
                f"{principal.name} lacks the scope for {method} {path}: needs "
                + " or ".join(required)
            )
        return principal

    def identify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer ...`` header value."""
        if not authorization:
            raise Unauthorized("send an API key or a JWT: 'Authorization: Bearer <key>'")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("use the Bearer scheme: 'Authorization: Bearer <key>'")
        kid = key_id(token)
        if kid is not None:
            record = self.keys.lookup(token)
            if record is None:
                raise Unauthorized("unknown, revoked or expired API key")
            return Principal(name=f"key:{record.name}", scopes=frozenset(record.scopes), key_id=kid)
        if not self.tokens.enabled:
            raise Unauthorized("not a maas API key (and no JWT verification is configured)")
        return self.tokens.verify(token)
