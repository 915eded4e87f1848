"""A digest's email: one message listing a batch's items (``services.digests`` batches them).

A digest lists its latest items, each message cut short, so that a busy window stays a readable
email within the template limits (loop turns, output size) like any other; ``more`` counts the
rest. Fifty items of ordinary text come to about 50 KiB of HTML; only text made of little but
characters HTML escapes, with 2,000-character links, could reach the 256 KiB output limit, and
that digest fails with the reason like any email over a limit.
"""

from __future__ import annotations

from django.core.mail import EmailMultiAlternatives

from notifications.channels.email.sending import compose_email
from notifications.models import Delivery, DigestBatch
from tenants.models import Tenant

DIGEST_ITEMS_SHOWN = 50
DIGEST_MESSAGE_CHARS = 500
DEFAULT_DIGEST_SUBJECT = (
    "{{ count }} new notification{% if count != 1 %}s{% endif %}"
    "{% if title %}: {{ title }}{% endif %}"
)
DEFAULT_DIGEST_TEXT = (
    "{% for item in items %}- {% if item.title %}{{ item.title }}: {% endif %}{{ item.message }}"
    "{% if item.url %} ({{ item.url }}){% endif %}\n{% endfor %}"
    "{% if more > 0 %}... and {{ more }} earlier\n{% endif %}"
    "\n--\n{{ tenant.name }}. Stop these emails: {{ unsubscribe_url }}\n"
)
DEFAULT_DIGEST_HTML = (
    "<!doctype html><html><body><ul>{% for item in items %}<li>"
    "{% if item.title %}<strong>{{ item.title }}</strong>: {% endif %}{{ item.message }}"
    '{% if item.url %} <a href="{{ item.url }}">{{ item.url }}</a>{% endif %}</li>{% endfor %}'
    "</ul>{% if more > 0 %}<p>... and {{ more }} earlier</p>{% endif %}"
    '<hr><p style="font-size:small">{{ tenant.name }}. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> from these emails.</p></body></html>'
)


def _shortened(message: str) -> str:
    if len(message) <= DIGEST_MESSAGE_CHARS:
        return message
    return message[: DIGEST_MESSAGE_CHARS - 1] + "…"


def compose_digest(
    *, tenant: Tenant, batch: DigestBatch, items: list[Delivery]
) -> EmailMultiAlternatives:
    """The digest of ``items`` (oldest first, at least one). Raises TemplateError."""
    latest = items[-1].send
    shown = items[-DIGEST_ITEMS_SHOWN:]
    context = {
        "count": len(items),
        "more": len(items) - len(shown),
        "items": [
            {
                "title": i.send.title,
                "message": _shortened(i.send.message),
                "url": i.send.url,
                "data": i.send.data,
                "created_at": i.created_at,
            }
            for i in shown
        ],
        "title": latest.title,
        "message": latest.message,
        "url": latest.url,
        "data": latest.data,
        "batch_key": batch.batch_key,
    }
    return compose_email(
        tenant=tenant,
        user=batch.recipient,
        notification_type=batch.type,
        host=tenant.primary_host(),
        context=context,
        templates=(DEFAULT_DIGEST_SUBJECT, DEFAULT_DIGEST_TEXT, DEFAULT_DIGEST_HTML),
        message_id=f"digest.{batch.pk}",
        headers={"X-Herald-Digest": str(batch.pk)},
    )
