"""Secret API key format: ``sk_`` + 43 URL-safe characters (256 random bits)."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "sk_"
DISPLAY_PREFIX_LENGTH = 11  # "sk_" and 8 characters of the secret


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(raw_key: str) -> str:
    """SHA-256 suits 256-bit random secrets: nothing to brute-force, and lookups stay O(1)."""
    return hashlib.sha256(raw_key.encode()).hexdigest()


def display_prefix(raw_key: str) -> str:
    return raw_key[:DISPLAY_PREFIX_LENGTH]


def looks_like_api_key(token: str) -> bool:
    return token.startswith(KEY_PREFIX)
