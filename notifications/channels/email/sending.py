"""Composing and sending one email: the tenant's sender, templates, unsubscribe headers, and
SMTP outcomes (a 5xx is permanent, a 4xx or a broken connection is worth another attempt).
Used by single deliveries and by digests (``notifications.services``)."""

from __future__ import annotations

import contextlib
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formataddr, parseaddr
from typing import Any

import redis
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import DatabaseError

from herald.text import display_name_clean
from notifications.channels.email.rendering import render_email
from notifications.channels.email.unsubscribe import unsubscribe_token, unsubscribe_url
from notifications.models import EndUser, NotificationType
from tenants.models import Tenant

RETRY = "retry"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    status: str  # a Delivery.Status, or RETRY
    error: str = ""


def retry_delay(outcome: Outcome, attempts: int) -> tuple[Outcome, float | None]:
    """After ``attempts`` tries: for a retry, the seconds to wait (exponential backoff), or a
    final failure once ``DELIVERY_MAX_ATTEMPTS`` is reached. Other outcomes pass unchanged."""
    if outcome.status != RETRY:
        return outcome, None
    if attempts >= settings.DELIVERY_MAX_ATTEMPTS:
        return Outcome("failed", f"Gave up after {attempts} attempts. {outcome.error}"), None
    delay = min(
        settings.DELIVERY_RETRY_BASE_SECONDS * 2 ** (attempts - 1),
        settings.DELIVERY_RETRY_MAX_SECONDS,
    )
    return outcome, delay


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
) -> EmailMultiAlternatives:
    """An email to ``user`` from the tenant, rendered from ``templates`` (subject, text, html)
    with ``context`` plus ``type``, ``user``, ``tenant`` and ``unsubscribe_url``, carrying the
    one-click unsubscribe headers. Raises TemplateError."""
    token = unsubscribe_token(tenant_id=tenant.pk, user_id=user.pk, type_id=notification_type.pk)
    link = unsubscribe_url(host=host, token=token)
    subject, text, html = templates
    rendered = render_email(
        subject=subject,
        text=text,
        html=html,
        context={
            **context,
            "type": notification_type.key,
            "user": {"id": user.external_id, "name": user.name, "email": user.email},
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
            **headers,
        },
    )
    message.attach_alternative(rendered.html, "text/html")
    return message


def smtp_outcome(exc: Exception) -> Outcome:
    """A 5xx is permanent; a 4xx or a broken connection is worth another attempt."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _msg in exc.recipients.values()]
        detail = "; ".join(f"{code} {msg!r}" for code, msg in exc.recipients.values())
        permanent = bool(codes) and all(code >= 500 for code in codes)
        return Outcome("failed" if permanent else RETRY, f"Recipient refused: {detail}")
    if isinstance(exc, smtplib.SMTPResponseException):
        permanent = exc.smtp_code >= 500
        error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        return Outcome("failed" if permanent else RETRY, error)
    return Outcome(RETRY, f"{type(exc).__name__}: {exc}")


def guarded(attempt: Callable[[], Outcome], *, what: str) -> Outcome:
    """``attempt()``, where an unexpected error fails this one email (logged, and so seen by
    Sentry) instead of its whole batch: what a message cannot survive (a header Django refuses
    to encode, say) fails the same way on every attempt. Database and Redis errors still end
    the batch, whose rows are claimed again once their lease runs out, within the attempt
    limit."""
    try:
        return attempt()
    except (DatabaseError, redis.RedisError):
        raise
    except Exception as exc:
        logger.exception("Sending %s failed unexpectedly", what)
        return Outcome("failed", f"Could not send: {type(exc).__name__}: {exc}")


class SmtpSession:
    """One SMTP connection for a batch, reopened after a failure."""

    def __init__(self) -> None:
        self._connection: Any = None

    def send(self, message: EmailMultiAlternatives) -> None:
        if self._connection is None:
            self._connection = get_connection(fail_silently=False)
            self._connection.open()
        self._connection.send_messages([message])

    def reset(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None
