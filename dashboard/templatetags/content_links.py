"""Links to the dashboard's content pages, built safely from tenant-chosen ids.

External ids are the customers' own and may hold ``/``, ``%``, ``?``, spaces or dots: each is
percent-encoded as one path segment (``/`` too), and the segments ``.`` and ``..``, which
browsers would resolve away, are spelled ``%2E``. Type keys are ``[a-z0-9_.-]``; the two keys
that collide with fixed pages (``new``, ``preview``) get their edit page at ``<key>/edit``.

Use ``{% load content_links %}`` then ``{{ user.external_id|user_url }}``, or import the
functions in views.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from django import template

from notifications.channel_rules import channel_rules_sentences
from notifications.channels.names import CHANNEL_LABELS

register = template.Library()

BASE = "/dashboard"
RESERVED_TYPE_PATHS = frozenset({"new", "preview"})


def _segment(value: str) -> str:
    encoded = quote(value, safe="")
    if encoded in (".", ".."):
        encoded = encoded.replace(".", "%2E")
    return encoded


@register.filter
def user_url(external_id: str) -> str:
    return f"{BASE}/users/{_segment(external_id)}"


@register.filter
def user_erase_url(external_id: str) -> str:
    return f"{user_url(external_id)}/erase"


@register.filter
def type_url(key: str) -> str:
    if key in RESERVED_TYPE_PATHS:
        return f"{BASE}/types/{key}/edit"
    return f"{BASE}/types/{_segment(key)}"


@register.filter
def type_sub_url(key: str, action: str) -> str:
    """``types/<key>/<action>``: ``{{ type.key|type_sub_url:"preview" }}``."""
    return f"{BASE}/types/{_segment(key)}/{action}"


@register.filter
def send_url(send_id: int) -> str:
    return f"{BASE}/notifications/{int(send_id)}"


STATUS_LABELS = {
    "skipped_preference": "opted out",
    "skipped_read": "skipped: read in time",
    "suppressed_quota": "over quota",
    **CHANNEL_LABELS,
}


@register.filter
def status_label(status: str) -> str:
    """Delivery and send statuses, and channel names, as the pages say them."""
    return STATUS_LABELS.get(status, status.replace("_", " "))


@register.filter
def actor_label(actor: str) -> str:
    """Who made a send (``Send.created_by``), in words."""
    kind, _, ref = actor.partition(":")
    labels = {
        "api_key": f"API key {ref}…",
        "admin": f"Admin token (admin #{ref})",
        "dashboard": f"Dashboard test (admin #{ref})",
    }
    return labels.get(kind, actor)


@register.filter
def duration(seconds: int | None) -> str:
    """A digest window in words: 90 -> "1 min 30 s", 86400 -> "1 d"."""
    if not seconds:
        return ""
    parts, rest = [], int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count} {unit}")
    return " ".join(parts[:2])


@register.filter
def rule_sentence(rules: dict[str, Any] | None) -> str:
    """A type's channel rules in words: "Email after 15 minutes, only if still unread"."""
    return "; ".join(channel_rules_sentences(rules or {}))
