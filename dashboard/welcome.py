"""One-time welcome tickets: from the sign-up result on the platform host to a signed-in session
on the new tenant's host.

Session cookies are host-only, so the platform host cannot sign anyone in on ``<slug>.<host>``.
It hands the browser a ticket instead: signed with ``SECRET_KEY`` (its own salt), valid for
``TICKET_MAX_AGE`` seconds, naming the tenant, the admin and a random nonce. The tenant host
accepts it once: the nonce is claimed with Redis ``SET NX``, so a replayed ticket (browser
history, a shared screen) signs no one in. Fails closed: without Redis, no ticket is redeemed and
the admin signs in with their password.
"""

from __future__ import annotations

import logging
import secrets

import redis
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.cache import cache

from accounts.models import User
from tenants.models import Tenant

logger = logging.getLogger(__name__)

SALT = "herald.dashboard.welcome.v1"
TICKET_MAX_AGE = 600  # seconds


def welcome_ticket(*, tenant_id: int, user_id: int) -> str:
    """A ticket that signs ``user_id`` in on ``tenant_id``'s host, once, within 10 minutes."""
    return signing.dumps(
        {"t": tenant_id, "u": user_id, "n": secrets.token_urlsafe(16)}, salt=SALT, compress=True
    )


def welcome_ticket_redeem(ticket: str, *, tenant: Tenant) -> User | None:
    """The admin a ticket signs in on ``tenant``'s host, or None when it is forged, expired,
    already used, of another tenant, or names no active admin. Call in the tenant's schema.
    Uses the ticket up (only a ticket of this tenant, naming an active admin)."""
    try:
        claims = signing.loads(ticket or "", salt=SALT, max_age=TICKET_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return None
    if not isinstance(claims, dict) or claims.get("t") != tenant.pk:
        return None
    user_id, nonce = claims.get("u"), claims.get("n")
    if type(user_id) is not int or not isinstance(nonce, str):
        return None
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return None
    try:
        first_use = cache.add(f"welcome-ticket:{nonce}", 1, timeout=TICKET_MAX_AGE + 60)
    except (redis.RedisError, OSError):
        logger.warning("Welcome ticket not redeemed: the cache is unreachable", exc_info=True)
        return None
    return user if first_use else None
