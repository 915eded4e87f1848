"""Signing secrets and the Standard Webhooks signature.

A secret is ``whsec_`` and the base64 of 32 random bytes, the format the ``standardwebhooks``
library (and every Standard Webhooks receiver) reads. The endpoint keeps it encrypted
(``herald.encryption``): the server must sign with it, so a hash would not do. It leaves the
server only in the answer that creates or rotates it; never log it or put it in an error.
"""

from __future__ import annotations

import base64
import math
import secrets
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from standardwebhooks.webhooks import Webhook

from herald import encryption

if TYPE_CHECKING:
    from notifications.models import WebhookEndpoint

SECRET_PREFIX = "whsec_"  # noqa: S105 (a format, not a secret)
SECRET_BYTES = 32


def webhook_secret_new() -> str:
    """A new random signing secret, ``whsec_<base64 of 32 bytes>``."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_secret_seal(secret: str) -> str:
    """``secret`` as the endpoint stores it (``secret_encrypted``)."""
    return encryption.encrypt(secret)


def webhook_secret_open(endpoint: WebhookEndpoint) -> str:
    """The endpoint's signing secret, decrypted. Only for signing: never log or return it."""
    return encryption.decrypt(endpoint.secret_encrypted)


def webhook_sign(
    endpoint_or_secret: WebhookEndpoint | str,
    *,
    msg_id: str,
    timestamp: datetime,
    body: bytes,
) -> dict[str, str]:
    """The ``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` headers of ``body``.

    ``msg_id`` is the event's id (``events.webhook_message_id``), the same on every attempt;
    ``timestamp`` is the attempt's time (a naive one is taken as UTC). ``body`` is the exact
    bytes sent: a receiver verifies those, not a re-encoding.
    """
    secret = (
        endpoint_or_secret
        if isinstance(endpoint_or_secret, str)
        else webhook_secret_open(endpoint_or_secret)
    )
    if timestamp.tzinfo is None:
        timestamp = timestamp.replace(tzinfo=UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    # The whole seconds the signature covers: the library floors the POSIX time too.
    signed_at = math.floor(timestamp.timestamp())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(signed_at),
        "webhook-signature": signature,
    }
