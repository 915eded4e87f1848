"""The Web Push protocol (RFC 8030), the push channel's transport, and what its answers mean.

One message to one browser subscription: the payload is encrypted for the browser (RFC 8291,
``aes128gcm``), the request signed with the server's VAPID key (RFC 8292; ``vapid``) and POSTed
by pywebpush through ``herald.egress.GuardedSession``, so every request goes only to addresses
the outbound guard allows (public, or inside ``WEBHOOK_ALLOWED_CIDRS``), checked again at
connect time, within ``PUSH_TIMEOUT_SECONDS``, never following a redirect.

Answers: 200, 201, 202 (any 2xx) accepted; 404 and 410 mean the subscription is gone
(``SubscriptionGone``: the caller deletes it); 408, 429, 5xx, a timeout or a broken connection
are transient; any other answer, and an address the guard refuses, is permanent.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from http_ece import ECEException
from py_vapid import VapidException
from pywebpush import WebPushException, webpush

from herald import egress
from notifications.channels.base import TransportError
from notifications.channels.push.vapid import vapid_signer

# RFC 8292 allows a VAPID token to live at most 24 hours; push services check it.
VAPID_TOKEN_SECONDS = 12 * 3600


class SubscriptionGone(Exception):
    """The push service no longer knows the subscription (404 or 410): it will never work
    again (the browser unsubscribed, or the subscription expired)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"Push service answered {status}: the subscription is gone.")
        self.status = status


def audience(endpoint: str) -> str:
    """The VAPID ``aud`` claim: the push service's origin (scheme, host and port)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}"


def answer_error(status: int, body: str) -> TransportError | SubscriptionGone:
    """What a push service's refusal means (see the module's docstring)."""
    if status in (404, 410):
        return SubscriptionGone(status)
    detail = f"Push service answered {status}: {body[:200]!r}" if body else f"Push service {status}"
    return TransportError(detail, permanent=not (status in (408, 429) or status >= 500))


class PushTransport:
    """One batch's sender of Web Push messages; holds the signer and the guarded session."""

    def __init__(self) -> None:
        self._session = egress.GuardedSession(timeout=settings.PUSH_TIMEOUT_SECONDS)
        self._signer = vapid_signer()

    def send(self, *, endpoint: str, p256dh: str, auth: str, payload: str, urgency: str) -> None:
        """Hand ``payload`` (UTF-8 text) to the push service for one subscription. Returns when
        it was accepted; raises ``SubscriptionGone`` or ``TransportError``."""
        claims: dict[str, str | int] = {
            "sub": settings.VAPID_SUBJECT,
            "aud": audience(endpoint),
            "exp": int(time.time()) + VAPID_TOKEN_SECONDS,
        }
        session: Any = self._session  # pywebpush declares requests.Session; it calls only post()
        try:
            webpush(
                subscription_info={"endpoint": endpoint, "keys": {"p256dh": p256dh, "auth": auth}},
                data=payload,
                vapid_private_key=self._signer,
                vapid_claims=claims,
                content_encoding="aes128gcm",
                ttl=settings.PUSH_TTL_SECONDS,
                headers={"Urgency": urgency},
                requests_session=session,
            )
        except WebPushException as exc:
            status = exc.status_code
            if status is None:  # refused before sending (a malformed key)
                raise TransportError(f"Cannot push: {exc.message}", permanent=True) from exc
            if 200 <= status < 300:
                return  # pywebpush refuses every 2xx but 200, 201 and 202; all are accepted
            raise answer_error(status, getattr(exc.response, "text", "")) from exc
        except egress.EgressError as exc:
            raise TransportError(exc.message, permanent=exc.permanent) from exc
        except (ECEException, VapidException, ValueError) as exc:
            raise TransportError(f"Cannot push: {exc}", permanent=True) from exc
