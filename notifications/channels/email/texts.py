"""Which texts one recipient's email is made of (``notifications.localisation`` decides).

Subject, text and HTML: the type's ``locales`` entry for the recipient's locale (or a shorter
tag of it), else the type's own field, else blank (Herald's default, built from the title and
message). The ``title`` and ``message`` the templates see are the recipient's in-app texts:
those of the stored in-app notification when the email has one (already resolved and rendered),
else resolved the same way from the type's ``locales`` and rendered here, else the send's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifications.channels.in_app.localised import send_context, user_context
from notifications.localisation import text_for
from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.templating import TemplateError, plain_context, render
from tenants.models import Tenant


@dataclass(frozen=True)
class EmailTexts:
    title: str
    message: str


def base_context(*, tenant: Tenant, send: Send, user: EndUser) -> dict[str, Any]:
    """What a template of ``send`` for ``user`` sees, but ``unsubscribe_url``: what in-app texts
    see (``send_context``, ``user_context``), one definition for both channels."""
    return {**send_context(tenant=tenant, send=send), "user": user_context(user)}


def email_templates(
    notification_type: NotificationType, tag: str
) -> tuple[tuple[str, str, str], str]:
    """The subject, text and HTML templates for a recipient with locale ``tag`` and the locale
    key the subject came from ("" when the type's own field or the default)."""
    locales = notification_type.locales or {}
    subject, source = text_for(
        locales, "email_subject", tag, type_text=notification_type.email_subject
    )
    text, _ = text_for(locales, "email_text", tag, type_text=notification_type.email_text)
    html, _ = text_for(locales, "email_html", tag, type_text=notification_type.email_html)
    locale = source if source not in ("type", "send") else ""
    return (subject or "", text or "", html or ""), locale


def email_texts(
    *, tenant: Tenant, send: Send, user: EndUser, notification: Notification | None
) -> EmailTexts:
    """The title and message an email of ``send`` to ``user`` shows (``notification``: the
    user's in-app copy, if any). Raises TemplateError when a locale's title or message does
    not render."""
    if notification is not None:
        return EmailTexts(notification.title, notification.message)
    locales = send.type.locales or {}
    title_template, _ = text_for(locales, "title", user.locale)
    message_template, _ = text_for(locales, "message", user.locale)
    title, message = send.title, send.message
    if title_template is not None or message_template is not None:
        context = plain_context(base_context(tenant=tenant, send=send, user=user))
        for name, source in (("title", title_template), ("message", message_template)):
            if source is None:
                continue
            try:
                rendered = render(
                    source, context, html=False, locale=user.locale, timezone=user.timezone
                )
            except TemplateError as exc:
                raise type(exc)(f"{name}: {exc}") from exc
            if name == "title":
                title = " ".join(rendered.split())[:300]
            else:
                message = rendered
    return EmailTexts(title, message)
