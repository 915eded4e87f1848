"""Secrets the server must use again later, encrypted at rest.

Most credentials Herald keeps (API keys, passwords) are only ever compared, so a hash is
enough. A webhook endpoint's signing secret is different: every delivery signs its body with
it (HMAC-SHA256, Standard Webhooks), so the server needs the secret itself. It is therefore
stored encrypted, with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``): a dump of
the database, or a replica, does not reveal it without the key.

Keys come from ``settings.HERALD_ENCRYPTION_KEYS``: Fernet keys (urlsafe base64 of 32 bytes),
newest first. The first encrypts; every one decrypts, so a key is rotated by putting a new one
in front, re-encrypting (``reencrypt``) at leisure, then dropping the old one. When the setting
is empty, one key is derived from ``SECRET_KEY`` with HKDF (a distinct ``info``, so the derived
key is useless for anything SECRET_KEY signs); rotating SECRET_KEY then needs the old
derived key listed in ``HERALD_ENCRYPTION_KEYS`` (``derived_key(old_secret_key)``).
"""

from __future__ import annotations

import base64
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

__all__ = ["InvalidToken", "decrypt", "derived_key", "encrypt", "reencrypt"]

_HKDF_INFO = b"herald encryption at rest v1"


def derived_key(secret_key: str) -> str:
    """The Fernet key derived from a ``SECRET_KEY``."""
    raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    return base64.urlsafe_b64encode(raw).decode()


@cache
def _fernet(keys: tuple[str, ...], secret_key: str) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in (keys or (derived_key(secret_key),))])


def _current() -> MultiFernet:
    keys = tuple(getattr(settings, "HERALD_ENCRYPTION_KEYS", ()))
    return _fernet(keys, settings.SECRET_KEY)


def encrypt(plaintext: str) -> str:
    """``plaintext`` encrypted with the newest key (a token of ASCII text)."""
    return _current().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """The plaintext of ``token``; raises ``InvalidToken`` when no configured key opens it."""
    return _current().decrypt(token.encode()).decode()


def reencrypt(token: str) -> str:
    """``token`` encrypted again with the newest key (for a key rotation)."""
    return _current().rotate(token.encode()).decode()
