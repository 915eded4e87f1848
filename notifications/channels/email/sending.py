"""Composing one email: the tenant's sender, the type's templates, the one-click unsubscribe
headers, the language. Used for single deliveries (``channel``) and digests (``digest``).

An email's language: its texts are in ``locale`` (the locale key of the type its subject came
from, else the recipient's locale, else ``en``), which the ``Content-Language`` header and the
``<html lang dir>`` of Herald's layouts say; Herald's own words in it are in the recipient's
language when Herald has a catalogue for it (``notifications.languages``), else English."""

from __future__ import annotations

from collections.abc import Callable
from email.utils import formataddr, parseaddr
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.utils import translation

from herald.text import display_name_clean
from notifications.channels.email.rendering import default_templates, render_email
from notifications.channels.email.unsubscribe import unsubscribe_token, unsubscribe_url
from notifications.channels.in_app.localised import user_context
from notifications.languages import DEFAULT_LOCALE, SOURCE_LANGUAGE, language_for, text_direction
from notifications.models import EndUser, NotificationType
from tenants.models import Tenant


def sender(tenant: Tenant) -> str:
    _name, default_address = parseaddr(settings.DEFAULT_FROM_EMAIL)
    name = display_name_clean(tenant.sender_name or tenant.name)
    return formataddr((name, tenant.sender_email or default_address))


def compose_email(
    *,
    tenant: Tenant,
    user: EndUser,
    notification_type: NotificationType,
    host: str,
    context: dict[str, Any],
    templates: tuple[str, str, str],
    message_id: str,
    headers: dict[str, str],
    locale: str = "",
    defaults: Callable[..., tuple[str, str, str]] = default_templates,
) -> EmailMultiAlternatives:
    """An email to ``user`` from the tenant, rendered from ``templates`` (subject, text, html;
    blank ones take ``defaults(lang=..., direction=...)``, built in the recipient's language)
    with ``context`` plus ``type``, ``user``, ``tenant`` and ``unsubscribe_url``, carrying the
    one-click unsubscribe headers and ``Content-Language``. ``locale``: the language of the
    texts (default: the recipient's locale, else ``en``). Raises TemplateError."""
    token = unsubscribe_token(tenant_id=tenant.pk, user_id=user.pk, type_id=notification_type.pk)
    link = unsubscribe_url(host=host, token=token)
    subject, text, html = templates
    lang = locale or user.locale or DEFAULT_LOCALE
    with translation.override(language_for(user.locale) or SOURCE_LANGUAGE):
        fallbacks = defaults(lang=lang, direction=text_direction(lang))
    rendered = render_email(
        subject=subject,
        text=text,
        html=html,
        defaults=fallbacks,
        locale=user.locale,
        timezone=user.timezone,
        context={
            **context,
            "type": notification_type.key,
            "user": user_context(user),
            "tenant": {"name": tenant.name},
            "unsubscribe_url": link,
        },
    )
    message = EmailMultiAlternatives(
        subject=rendered.subject,
        body=rendered.text,
        from_email=sender(tenant),
        to=[formataddr((display_name_clean(user.name), user.email))],
        headers={
            "List-Unsubscribe": f"<{link}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            # Stable per delivery or digest: should a retry ever repeat an email, receivers
            # can tell.
            "Message-ID": f"<{message_id}.{tenant.schema_name}@{settings.PLATFORM_HOST}>",
            "Content-Language": lang,
            **headers,
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message
