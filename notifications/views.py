"""Pages for people rather than programs: the one-click unsubscribe link of every email."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.channels.email.unsubscribe import unsubscribe_target
from notifications.models import EMAIL, EndUser, NotificationType
from notifications.services.preferences import preferences_set


def _page(
    request: HttpRequest, status: int, heading: str, text: str, *, confirm: bool = False
) -> HttpResponse:
    context = {"heading": heading, "text": text, "confirm": confirm}
    response = render(request, "notifications/unsubscribe.html", context, status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


@csrf_exempt  # mail clients POST without a session (RFC 8058); the signed token authorizes
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """GET asks (link scanners must not unsubscribe anyone); POST turns that type's email off."""
    target = unsubscribe_target(token)
    tenant = getattr(request, "tenant", None)
    if target is None or tenant is None or target.tenant_id != tenant.pk:
        return _page(request, 404, "Link not valid", "This unsubscribe link is not valid here.")
    user = EndUser.objects.filter(pk=target.user_id).first()
    notification_type = NotificationType.objects.filter(pk=target.type_id).first()
    if user is None or notification_type is None:
        return _page(request, 404, "Link expired", "There is nothing left to unsubscribe from.")
    name = notification_type.name or notification_type.key
    if request.method == "GET":
        return _page(
            request, 200, "Unsubscribe?", f"Stop “{name}” emails from {tenant.name}?", confirm=True
        )
    preferences_set(user=user, types={notification_type.key: {EMAIL: False}})
    return _page(
        request, 200, "Unsubscribed", f"You will no longer get “{name}” emails from {tenant.name}."
    )
