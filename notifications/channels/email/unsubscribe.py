"""Signed one-click unsubscribe links (RFC 8058): no login, one type's email for one user.

The token signs (tenant id, user id, type id) with ``SECRET_KEY``; it does not expire, as links in
old emails must keep working. It is only valid on its own tenant's host.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core import signing

SALT = "herald.unsubscribe.v1"


@dataclass(frozen=True)
class UnsubscribeTarget:
    tenant_id: int
    user_id: int
    type_id: int


def unsubscribe_token(*, tenant_id: int, user_id: int, type_id: int) -> str:
    return signing.dumps([tenant_id, user_id, type_id], salt=SALT)


def unsubscribe_target(token: str) -> UnsubscribeTarget | None:
    """What a token unsubscribes; None when it is forged or malformed."""
    try:
        value = signing.loads(token, salt=SALT)
    except signing.BadSignature:
        return None
    if not (isinstance(value, list) and len(value) == 3 and all(type(v) is int for v in value)):
        return None
    return UnsubscribeTarget(tenant_id=value[0], user_id=value[1], type_id=value[2])


def unsubscribe_url(*, host: str, token: str) -> str:
    port = f":{settings.PUBLIC_URL_PORT}" if settings.PUBLIC_URL_PORT else ""
    return f"{settings.PUBLIC_URL_SCHEME}://{host}{port}/unsubscribe/{token}"
