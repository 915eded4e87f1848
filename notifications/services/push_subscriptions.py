"""End users' web push subscriptions: save one (a browser's ``PushSubscription`` JSON), delete one.

Call inside the tenant's schema. Every refusal is a domain error (``herald.domain``) whose
``details`` name the fields, as a browser's JSON nests them (``{"keys": {"p256dh": [...]}}``).

The rules:
- ``endpoint``: the push service's URL, checked by the outbound address guard
  (``herald.egress.url_refusal``): https, and every address its host resolves to public, or
  inside ``WEBHOOK_ALLOWED_CIDRS`` (the same rules as webhook endpoints; checked again when
  pushing). At most ``ENDPOINT_MAX_LENGTH`` characters.
- ``keys.p256dh``: base64url of the browser's P-256 public key, an uncompressed point (65 bytes)
  that is on the curve; ``keys.auth``: base64url of its 16-byte authentication secret.
- An endpoint is unique: saving a known one again updates its keys and moves it to the caller
  (a browser that passed to another user), keeping its id.
- A user keeps at most ``MAX_SUBSCRIPTIONS_PER_USER``: a new one replaces their oldest.
"""

from __future__ import annotations

import base64
import binascii
import re

from cryptography.hazmat.primitives.asymmetric import ec
from django.db import transaction

from herald import egress
from herald.domain import Invalid
from notifications.models import EndUser, PushSubscription

MAX_SUBSCRIPTIONS_PER_USER = 20
ENDPOINT_MAX_LENGTH = 2000
USER_AGENT_MAX_LENGTH = 500
_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def _base64url(value: str) -> bytes | None:
    """The bytes of base64url text (padding optional), or None when it is not base64url."""
    if not _BASE64URL.match(value):
        return None
    unpadded = value.rstrip("=")
    try:
        return base64.urlsafe_b64decode(unpadded + "=" * (-len(unpadded) % 4))
    except (binascii.Error, ValueError):
        return None


def _unpadded(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _p256dh_refusal(raw: bytes | None) -> str | None:
    if raw is None or len(raw) != 65 or raw[0] != 4:
        return "The browser's P-256 public key: base64url of an uncompressed point (65 bytes)."
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        return "Not a point on the P-256 curve."
    return None


def _cleaned(*, endpoint: str, p256dh: str, auth: str) -> tuple[str, str]:
    """The keys, normalized (base64url without padding); ``Invalid`` names every bad field."""
    errors: dict[str, object] = {}
    if len(endpoint) > ENDPOINT_MAX_LENGTH:
        errors["endpoint"] = [f"At most {ENDPOINT_MAX_LENGTH} characters."]
    elif refusal := egress.url_refusal(endpoint):
        errors["endpoint"] = [refusal]
    key_errors: dict[str, list[str]] = {}
    public = _base64url(p256dh)
    if refusal := _p256dh_refusal(public):
        key_errors["p256dh"] = [refusal]
    secret = _base64url(auth)
    if secret is None or len(secret) != 16:
        key_errors["auth"] = ["The browser's authentication secret: base64url of 16 bytes."]
    if key_errors:
        errors["keys"] = key_errors
    if errors:
        raise Invalid("Invalid push subscription.", details=errors)
    if public is None or secret is None:  # refused above; narrows the types
        raise AssertionError
    return _unpadded(public), _unpadded(secret)


@transaction.atomic
def push_subscription_save(
    *, user: EndUser, endpoint: str, p256dh: str, auth: str, user_agent: str = ""
) -> tuple[PushSubscription, bool]:
    """Save a browser's subscription for ``user``; returns it and whether it is new (a known
    endpoint is updated and moved to ``user``). Replaces the user's oldest subscriptions
    beyond ``MAX_SUBSCRIPTIONS_PER_USER``."""
    p256dh, auth = _cleaned(endpoint=endpoint, p256dh=p256dh, auth=auth)
    # One save per user at a time, so two concurrent ones cannot both pass the cap. NO KEY
    # UPDATE: a send's FOR KEY SHARE on its recipients does not wait for it.
    list(EndUser.objects.select_for_update(no_key=True).filter(pk=user.pk).values_list("pk"))
    subscription, created = PushSubscription.objects.update_or_create(
        endpoint=endpoint,
        defaults={
            "user": user,
            "p256dh": p256dh,
            "auth": auth,
            "user_agent": user_agent[:USER_AGENT_MAX_LENGTH],
        },
    )
    kept = (
        PushSubscription.objects.filter(user=user)
        .exclude(pk=subscription.pk)
        .order_by("-id")
        .values_list("pk", flat=True)[: MAX_SUBSCRIPTIONS_PER_USER - 1]
    )
    PushSubscription.objects.filter(user=user).exclude(pk=subscription.pk).exclude(
        pk__in=list(kept)
    ).delete()
    return subscription, created


def push_subscription_delete(*, subscription: PushSubscription) -> None:
    subscription.delete()
