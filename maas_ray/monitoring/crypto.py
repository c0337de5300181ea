"""Encryption at rest of the prediction log and the labels (AES-GCM, 256-bit key).

A sealed file is ``MAGIC + nonce (12 bytes) + ciphertext``; the key is the
setting ``MAAS_MONITOR_KEY`` (base64) or ``MAAS_HOME/security/monitor.key``,
made with mode 0600 by whichever process needs it first. A copied artifact
store without the key holds nothing readable.
"""

from __future__ import annotations

import base64
import secrets
import time
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from maas_ray.security.ray_token import write_once
from maas_ray.settings import Settings

MAGIC = b"MAASLOG1"
_NONCE = 12


class SealError(ValueError):
    """A sealed file that this key cannot open (another key, or damaged)."""


def key_file(settings: Settings) -> Path:
    """Where the platform's monitoring key lives when no setting gives it."""
    return settings.security_dir / "monitor.key"


def load_key(settings: Settings) -> bytes:
    """The 32-byte key: from the setting, else the key file (made once, 0600)."""
    if settings.monitor_key is not None:
        key = base64.b64decode(settings.monitor_key.get_secret_value())
        if len(key) != 32:
            raise ValueError("MAAS_MONITOR_KEY must be the base64 of 32 bytes")
        return key
    path = key_file(settings)
    write_once(path, base64.b64encode(secrets.token_bytes(32)).decode() + "\n")
    key = b""
    for _ in range(50):  # another process may be between creating the file and writing it
        key = base64.b64decode(path.read_text().strip() or "")
        if key:
            break
        time.sleep(0.01)
    if len(key) != 32:
        raise ValueError(f"{path} does not hold the base64 of 32 bytes")
    return key


def seal(key: bytes, data: bytes) -> bytes:
    """``data`` encrypted and authenticated with ``key``."""
    nonce = secrets.token_bytes(_NONCE)
    return MAGIC + nonce + AESGCM(key).encrypt(nonce, data, MAGIC)


def unseal(key: bytes, sealed: bytes) -> bytes:
    """The plain bytes of ``seal``'s output; SealError for another key or damage."""
    if not sealed.startswith(MAGIC) or len(sealed) < len(MAGIC) + _NONCE + 16:
        raise SealError("not a sealed maas_ray monitoring file")
    nonce = sealed[len(MAGIC) : len(MAGIC) + _NONCE]
    try:
        return AESGCM(key).decrypt(nonce, sealed[len(MAGIC) + _NONCE :], MAGIC)
    except InvalidTag as exc:
        raise SealError("the monitoring key does not open this file") from exc
