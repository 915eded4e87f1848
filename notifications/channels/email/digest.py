"""A digest's email: one message listing a batch's items (``services.digests`` batches them),
its headings and footer in the recipient's language (``sending``), each item's title and
message the recipient's (``texts``).

A digest lists its latest items, each message cut short, so that a busy window stays a readable
email within the template limits (loop turns, output size) like any other; ``more`` counts the
rest. Fifty items of ordinary text come to about 50 KiB of HTML; only text made of little but
characters HTML escapes, with 2,000-character links, could reach the 256 KiB output limit, and
that digest fails with the reason like any email over a limit.
"""

from __future__ import annotations

import functools

from django.core.mail import EmailMultiAlternatives
from django.utils.translation import ngettext

from notifications.channels.email.rendering import herald_text, html_footer, html_open, text_footer
from notifications.channels.email.sending import compose_email
from notifications.channels.email.texts import email_texts
from notifications.models import Delivery, DigestBatch
from tenants.models import Tenant

DIGEST_ITEMS_SHOWN = 50
DIGEST_MESSAGE_CHARS = 500


def digest_templates(
    *, count: int, more: int, lang: str = "en", direction: str = "ltr"
) -> tuple[str, str, str]:
    """Herald's digest subject, text and HTML for ``count`` items of which ``more`` are not
    shown, in the active language (``translation.override``)."""
    heading = herald_text(
        ngettext("%(count)s new notification", "%(count)s new notifications", count),
        html=False,
        count="{{ count }}",
    )
    earlier = ngettext("... and %(more)s earlier", "... and %(more)s earlier", more)
    subject = heading + "{% if title %}: {{ title }}{% endif %}"
    text = (
        "{% for item in items %}- {% if item.title %}{{ item.title }}: {% endif %}"
        "{{ item.message }}{% if item.url %} ({{ item.url }}){% endif %}\n{% endfor %}"
        "{% if more > 0 %}" + herald_text(earlier, html=False, more="{{ more }}") + "\n{% endif %}"
        "\n--\n" + text_footer() + "\n"
    )
    html = (
        html_open(lang, direction) + "<ul>{% for item in items %}<li>"
        "{% if item.title %}<strong>{{ item.title }}</strong>: {% endif %}{{ item.message }}"
        '{% if item.url %} <a href="{{ item.url }}">{{ item.url }}</a>{% endif %}</li>{% endfor %}'
        "</ul>{% if more > 0 %}<p>" + herald_text(earlier, html=True, more="{{ more }}") + "</p>"
        '{% endif %}<hr><p style="font-size:small">' + html_footer() + "</p></body></html>"
    )
    return subject, text, html


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
    count, more = len(items), len(items) - len(shown)
    texts = []
    for item in shown:
        item.send.type = batch.type  # a batch holds one type's sends
        notification = item.notification if item.notification_id else None
        texts.append(
            email_texts(
                tenant=tenant, send=item.send, user=batch.recipient, notification=notification
            )
        )
    context = {
        "count": count,
        "more": more,
        "items": [
            {
                "title": text.title,
                "message": _shortened(text.message),
                "url": i.send.url,
                "data": i.send.data,
                "created_at": i.created_at,
            }
            for i, text in zip(shown, texts, strict=True)
        ],
        "title": texts[-1].title,
        "message": texts[-1].message,
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
        templates=("", "", ""),
        defaults=functools.partial(digest_templates, count=count, more=more),
        message_id=f"digest.{batch.pk}",
        headers={"X-Herald-Digest": str(batch.pk)},
    )
