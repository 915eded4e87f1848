"""What the dashboard's content pages do beyond the notification services: template previews
from sample data, the "send me a test email" button, and the test-send form's call into
``notification_send``. Call inside the tenant's schema.

Previews and test emails go through the worker's own ``compose_email`` (same context, same
defaults for blank templates, same headers, same sandbox and limits), with a sample recipient
that is never saved. A template over a limit is an error for the admin, never a hang.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.utils import formataddr
from typing import Any

import redis
from django.core.mail import get_connection

from herald.redisio import redis_key, shared_redis
from herald.text import display_name_clean
from notifications.channels.email.rendering import RenderedEmail
from notifications.channels.email.sending import compose_email
from notifications.localisation import LOCALISED_FIELDS, text_for
from notifications.models import EndUser, NotificationType
from notifications.services.sending import SendInput, notification_send, request_fingerprint
from notifications.services.users import RecipientInput
from notifications.templating import TemplateError, plain_context, render, render_deadline
from tenants.models import Tenant

logger = logging.getLogger(__name__)

TEST_EMAILS_PER_MINUTE = 5


@dataclass(frozen=True)
class Sample:
    """The notification and recipient a preview or test email is rendered for."""

    title: str = "Your report is ready"
    message: str = "The March revenue report has finished processing.\nOpen it to see the numbers."
    url: str = "https://app.example.com/reports/42"
    data: dict[str, Any] = field(default_factory=lambda: {"report": "March revenue", "pages": 3})
    user_id: str = "user-123"
    user_name: str = "Ada Lovelace"
    user_email: str = "ada@example.com"
    user_locale: str = "en"


def _render(
    *,
    tenant: Tenant,
    key: str,
    templates: tuple[str, str, str],
    sample: Sample,
    host: str,
    message_id: str = "preview",
) -> Any:
    """The email the worker would build for ``sample``. Raises TemplateError."""
    recipient = EndUser(
        pk=0,
        external_id=sample.user_id,
        name=sample.user_name,
        email=sample.user_email,
        locale=sample.user_locale,
    )
    return compose_email(
        tenant=tenant,
        user=recipient,
        notification_type=NotificationType(pk=0, key=key),
        host=host,
        context={
            "title": sample.title,
            "message": sample.message,
            "url": sample.url,
            "data": sample.data,
        },
        templates=templates,
        message_id=message_id,
        headers={},
    )


def email_preview(
    *, tenant: Tenant, key: str, templates: tuple[str, str, str], sample: Sample, host: str
) -> RenderedEmail:
    """Subject, text and HTML of ``templates`` (subject, text, html; blank ones take the
    defaults) rendered for ``sample``. Raises TemplateError with a message for the admin."""
    message = _render(tenant=tenant, key=key, templates=templates, sample=sample, host=host)
    return RenderedEmail(
        subject=message.subject, text=message.body, html=message.alternatives[0][0]
    )


@dataclass(frozen=True)
class LocalisedPreview:
    """What a recipient with ``locale`` gets: the in-app title and message, the email, and
    where each of the five texts came from (``source_label``), keyed by field."""

    locale: str
    title: str
    message: str
    email: RenderedEmail
    sources: dict[str, str]


def source_label(source: str, locale: str) -> str:
    """Where a text came from, for the admin: ``text_for``'s source for ``locale``."""
    if source == "type":
        return "from the type"
    if source == "send":
        return "from the send's text"
    if source != locale and "-" not in source:
        return f"from {source} (language)"
    return f"from {source}"


def localised_preview(
    *,
    tenant: Tenant,
    key: str,
    templates: tuple[str, str, str],
    locales: Mapping[str, Mapping[str, str]],
    locale: str,
    sample: Sample,
    host: str,
) -> LocalisedPreview:
    """The texts a recipient with ``locale`` (normalised) gets from a type with the email
    ``templates`` (subject, text, html) and per-locale texts ``locales``, for ``sample``.
    Each text is resolved as a send resolves it (``text_for``); the email sees the resolved
    title and message. Raises TemplateError naming the part that failed."""
    own = dict(zip(("email_subject", "email_text", "email_html"), templates, strict=True))
    chosen: dict[str, str | None] = {}
    sources: dict[str, str] = {}
    for name in LOCALISED_FIELDS:
        text, source = text_for(locales, name, locale, type_text=own.get(name, ""))
        chosen[name] = text
        sources[name] = source_label(source, locale)
    context = plain_context(
        {
            "title": sample.title,
            "message": sample.message,
            "url": sample.url,
            "data": sample.data,
            "type": key,
            "user": {
                "id": sample.user_id,
                "name": sample.user_name,
                "email": sample.user_email,
                "locale": locale,
            },
            "tenant": {"name": tenant.name},
        }
    )
    deadline = render_deadline()
    texts = {"title": sample.title, "message": sample.message}
    for name in ("title", "message"):
        template = chosen[name]
        if template is not None:
            try:
                texts[name] = render(template, context, html=False, deadline=deadline)
            except TemplateError as exc:
                raise type(exc)(f"{name} ({sources[name]}): {exc}") from exc
    localised = replace(sample, title=texts["title"], message=texts["message"], user_locale=locale)
    email = email_preview(
        tenant=tenant,
        key=key,
        templates=(
            chosen["email_subject"] or "",
            chosen["email_text"] or "",
            chosen["email_html"] or "",
        ),
        sample=localised,
        host=host,
    )
    return LocalisedPreview(
        locale=locale, title=texts["title"], message=texts["message"], email=email, sources=sources
    )


class EmailTestError(Exception):
    """The test email was not sent; the message says why, for the admin."""


def email_test_counter_key(*, tenant_id: int, admin_id: int) -> str:
    return redis_key("dashboard", "test-email", tenant_id, admin_id)


def email_test_wait(*, tenant: Tenant, admin_id: int) -> int | None:
    """Count one test email of this admin; the seconds to wait when over
    ``TEST_EMAILS_PER_MINUTE`` (None: go ahead). With Redis down the button still works."""
    key = email_test_counter_key(tenant_id=tenant.pk, admin_id=admin_id)
    try:
        client = shared_redis()
        pipe = client.pipeline()
        pipe.set(key, 0, ex=60, nx=True)
        pipe.incr(key)
        pipe.ttl(key)
        _created, count, ttl = pipe.execute()
    except (redis.RedisError, OSError):
        logger.warning("Test email rate limit skipped: Redis is unreachable", exc_info=True)
        return None
    if count > TEST_EMAILS_PER_MINUTE:
        return max(int(ttl), 1)
    return None


def email_test_send(
    *, tenant: Tenant, notification_type: NotificationType, to_email: str, to_name: str, host: str
) -> str:
    """Send ``notification_type``'s saved templates, rendered for the sample recipient, to an
    admin, marked as a test. Not metered. Returns the subject; raises EmailTestError."""
    templates = (
        notification_type.email_subject,
        notification_type.email_text,
        notification_type.email_html,
    )
    try:
        message = _render(
            tenant=tenant,
            key=notification_type.key,
            templates=templates,
            sample=Sample(),
            host=host,
            message_id=f"test.{uuid.uuid4().hex}",
        )
    except TemplateError as exc:
        raise EmailTestError(f"The templates do not render: {exc}") from exc
    message.subject = f"[Test] {message.subject}"
    message.to = [formataddr((display_name_clean(to_name), to_email))]
    message.extra_headers["X-Herald-Test"] = "1"
    try:
        get_connection(fail_silently=False).send_messages([message])
    except (smtplib.SMTPException, OSError) as exc:
        logger.warning("Test email to %s failed", to_email, exc_info=True)
        raise EmailTestError(f"The mail server did not accept it: {exc}") from exc
    return message.subject


@dataclass(frozen=True)
class NotificationTest:
    recipient: str
    type: str
    title: str
    message: str
    url: str
    channels: list[str] | None
    idempotency_key: str


def notification_test_send(*, tenant: Tenant, request: NotificationTest, admin_id: int) -> int:
    """Send one notification to one existing user through the API's own path (quota, plan
    limits, idempotency). Returns the send's id; raises the send's ``herald.domain`` errors
    (``OverQuota``, ``Conflict``...)."""
    body: dict[str, Any] = {
        "type": request.type,
        "recipients": [request.recipient],
        "title": request.title,
        "message": request.message,
        "url": request.url,
    }
    if request.channels:
        body["channels"] = request.channels
    outcome = notification_send(
        tenant=tenant,
        request=SendInput(
            type=request.type,
            recipients=[RecipientInput(external_id=request.recipient)],
            title=request.title,
            message=request.message,
            url=request.url,
            channels=request.channels or None,
        ),
        fingerprint=request_fingerprint(body),
        idempotency_key=f"dashboard:{request.idempotency_key}",
        actor=f"dashboard:{admin_id}",
    )
    return outcome.response["id"]
