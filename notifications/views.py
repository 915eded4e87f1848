"""Pages for people rather than programs: the one-click unsubscribe link of every email.

They speak the user's language: the one of their stored locale, else the one the browser asks
for (``Accept-Language``), else English (``notifications.languages``)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.channels.email.unsubscribe import unsubscribe_target
from notifications.languages import (
    SOURCE_LANGUAGE,
    language_for,
    language_from_header,
    text_direction,
)
from notifications.models import EMAIL, EndUser, NotificationType
from notifications.services.preferences import preferences_set


def _page(
    request: HttpRequest, status: int, heading: str, text: str, *, confirm: bool = False
) -> HttpResponse:
    language = translation.get_language()
    context = {
        "heading": heading,
        "text": text,
        "confirm": confirm,
        "language": language,
        "direction": text_direction(language),
    }
    response = render(request, "notifications/unsubscribe.html", context, status=status)
    response["Content-Language"] = language
    response["Vary"] = "Accept-Language"
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


def _language(request: HttpRequest, user: EndUser | None) -> str:
    return (
        (language_for(user.locale) if user is not None else None)
        or language_from_header(request.headers.get("Accept-Language", ""))
        or SOURCE_LANGUAGE
    )


@csrf_exempt  # mail clients POST without a session (RFC 8058); the signed token authorizes
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST turns that type's email off."""
    target = unsubscribe_target(token)
    tenant = getattr(request, "tenant", None)
    if target is None or tenant is None or target.tenant_id != tenant.pk:
        with translation.override(_language(request, None)):
            return _page(
                request, 404, gettext("Link not valid"),
                gettext("This unsubscribe link is not valid here."),
            )  # fmt: skip
    user = EndUser.objects.filter(pk=target.user_id).first()
    notification_type = NotificationType.objects.filter(pk=target.type_id).first()
    with translation.override(_language(request, user)):
        if user is None or notification_type is None:
            return _page(
                request, 404, gettext("Link expired"),
                gettext("There is nothing left to unsubscribe from."),
            )  # fmt: skip
        names = {"type": notification_type.name or notification_type.key, "tenant": tenant.name}
        if request.method == "GET":
            question = gettext("Stop “%(type)s” emails from %(tenant)s?") % names
            return _page(request, 200, gettext("Unsubscribe?"), question, confirm=True)
        preferences_set(user=user, types={notification_type.key: {EMAIL: False}})
        done = gettext("You will no longer get “%(type)s” emails from %(tenant)s.") % names
        return _page(request, 200, gettext("Unsubscribed"), done)
