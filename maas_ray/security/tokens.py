"""JWT bearer tokens, verified with PyJWT: HS256 with a shared secret, RS256/ES256
against a JWKS (an OIDC provider's URL, or a file).

The token's ``scope`` claim (a space-separated string, or a list; ``scp`` too)
holds the same scopes as API keys. ``exp`` is required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jwt

from maas_ray.errors import Unauthorized
from maas_ray.security.scopes import Principal

HS = ["HS256"]
ASYMMETRIC = ["RS256", "ES256"]


class TokenVerifier:
    """Checks bearer JWTs; configured from the ``jwt_*`` settings."""

    def __init__(
        self,
        secret: str | None = None,
        jwks: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> None:
        self.secret = secret
        self.audience = audience
        self.issuer = issuer
        self._jwks_client: jwt.PyJWKClient | None = None
        self._jwks_set: jwt.PyJWKSet | None = None
        if jwks and jwks.startswith(("https://", "http://")):
            self._jwks_client = jwt.PyJWKClient(jwks, cache_keys=True, lifespan=300)
        elif jwks:
            self._jwks_set = jwt.PyJWKSet.from_dict(json.loads(Path(jwks).read_text()))

    @property
    def enabled(self) -> bool:
        """True when some kind of token can be verified."""
        return bool(self.secret or self._jwks_client or self._jwks_set)

    def verify(self, token: str) -> Principal:
        """The principal of a valid token; Unauthorized saying why otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized("the bearer token is neither an API key nor a JWT") from exc
        alg = header.get("alg")
        options: Any = {"require": ["exp"]}
        try:
            if alg in HS and self.secret:
                claims = jwt.decode(
                    token,
                    self.secret,
                    algorithms=HS,
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,
                )
            elif alg in ASYMMETRIC and (self._jwks_client or self._jwks_set):
                claims = jwt.decode(
                    token,
                    self._signing_key(token, header),
                    algorithms=ASYMMETRIC,
                    audience=self.audience,
                    issuer=self.issuer,
                    options=options,
                )
            else:
                raise Unauthorized(f"tokens signed with {alg!r} are not accepted here")
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("the bearer token has expired") from exc
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
            raise Unauthorized(f"invalid bearer token: {exc}") from exc
        return Principal(name=f"jwt:{str(claims.get('sub', '?'))[:100]}", scopes=_scopes(claims))

    def _signing_key(self, token: str, header: dict[str, Any]) -> Any:
        kid = header.get("kid")
        if self._jwks_client is not None:
            return self._jwks_client.get_signing_key_from_jwt(token).key
        assert self._jwks_set is not None
        keys = [k for k in self._jwks_set.keys if kid is None or k.key_id == kid]
        if not keys:
            raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the JWKS")
        return keys[0].key


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    raw = claims.get("scope", claims.get("scp", ""))
    items = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
    return frozenset(str(s) for s in items)
