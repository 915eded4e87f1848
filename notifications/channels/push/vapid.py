"""The server's VAPID key pair (RFC 8292), which signs every request to a push service.

One key serves the whole platform, every tenant: a browser subscribes with its public key
(``applicationServerKey``) and the push service then accepts only requests signed by the
matching private key. Tenants are kept apart by the subscriptions, not by keys.

The private key is ``settings.VAPID_PRIVATE_KEY`` (a PEM P-256 key). When that is empty, one is
derived from ``SECRET_KEY`` with HKDF (a distinct ``info``, so it is useless for anything
SECRET_KEY signs): every replica, web and worker, computes the same key with no setting to
share. Changing SECRET_KEY then changes the key, and every browser must subscribe again (push
services refuse requests signed by another key); set VAPID_PRIVATE_KEY to keep it independent.

This module imports nothing of Herald's and reads settings only when called: the settings
module uses its checks (``vapid_key_refusal``, ``vapid_subject_valid``) at startup.
"""

from __future__ import annotations

import base64
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_HKDF_INFO = b"herald vapid key v1"
# The order of P-256's group: a private key is a number in [1, n - 1].
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def vapid_key_refusal(pem: str) -> str | None:
    """Why ``pem`` cannot be the VAPID private key, or None when it can."""
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as exc:
        return f"not a PEM private key without a password ({exc})."
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        return "not a P-256 (prime256v1) elliptic curve key."
    return None


def vapid_subject_valid(subject: str) -> bool:
    """A ``mailto:`` address or an ``https:`` URL with a host, as RFC 8292 asks for ``sub``."""
    if any(c.isspace() for c in subject):
        return False
    if subject.startswith("mailto:"):
        local, at, domain = subject.removeprefix("mailto:").rpartition("@")
        return bool(local and at and domain)
    try:
        parts = urlsplit(subject)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.hostname)


def derived_private_key(secret_key: str) -> ec.EllipticCurvePrivateKey:
    """The P-256 key derived from a ``SECRET_KEY`` (48 bytes of HKDF, reduced into the group's
    range, so the bias is negligible)."""
    raw = HKDF(algorithm=hashes.SHA256(), length=48, salt=None, info=_HKDF_INFO).derive(
        secret_key.encode()
    )
    scalar = int.from_bytes(raw, "big") % (_P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


@cache
def _private_key(pem: str, secret_key: str) -> ec.EllipticCurvePrivateKey:
    if not pem:
        return derived_private_key(secret_key)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):  # refused at startup already
        raise TypeError("VAPID_PRIVATE_KEY is not an elliptic curve key.")
    return key


def vapid_private_key() -> ec.EllipticCurvePrivateKey:
    """The configured key, or the one derived from SECRET_KEY."""
    from django.conf import settings

    return _private_key(settings.VAPID_PRIVATE_KEY, settings.SECRET_KEY)


def public_key_base64url(key: ec.EllipticCurvePublicKey) -> str:
    """A public key as browsers take and give it: the uncompressed point (65 bytes),
    base64url without padding."""
    point = key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


def vapid_public_key() -> str:
    """The server's public key in the browser's form (``applicationServerKey``)."""
    return public_key_base64url(vapid_private_key().public_key())


def vapid_signer() -> Any:
    """A py_vapid signer (RFC 8292 ``vapid t=..., k=...``) holding the key. Its own check of
    ``sub`` is off: ours (``vapid_subject_valid``) ran at startup and accepts every https URL
    (py_vapid's refuses one with a path)."""
    from py_vapid import Vapid02

    return Vapid02(vapid_private_key(), conf={"no-strict": True})
