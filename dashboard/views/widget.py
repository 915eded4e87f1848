"""The widget page: the install snippet for this tenant, its allowed origins, its replacements of
the widget's strings, a live preview."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.access import admin_required, dashboard_tenant
from herald import safejson
from herald.domain import DomainError
from herald.errors import http_status
from herald.ratelimits import measure
from notifications.services.sending import SendInput, notification_send, request_fingerprint
from notifications.services.users import RecipientInput, user_upsert
from tenants.models import Tenant
from tenants.requests import AdminHttpRequest
from tenants.serializers import TenantUpdateSerializer
from tenants.services import tenant_update
from tenants.tokens import end_user_token_issue

# The end user the preview runs as: a real user of the tenant, so the preview shows exactly what
# the widget shows, named so that nobody mistakes it for a customer.
PREVIEW_USER = "herald-widget-preview"
PREVIEW_TYPE = "herald.widget-preview"


def _origin(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").rstrip("/")


@admin_required
def widget(request: HttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    errors: list[str] = []
    origins_text = "\n".join(tenant.allowed_origins)
    strings_text = _strings_text(tenant.widget_strings)
    strings_errors: list[str] = []
    if request.method == "POST" and "widget_strings" in request.POST:
        strings_text = request.POST.get("widget_strings", "")
        strings_errors = _save_strings(tenant, strings_text)
        if not strings_errors:
            messages.success(request, "Widget strings saved.")
            return redirect("dashboard:widget")
    elif request.method == "POST":
        origins_text = request.POST.get("allowed_origins", "")
        lines = [line.strip() for line in origins_text.splitlines() if line.strip()]
        serializer = TenantUpdateSerializer(data={"allowed_origins": lines})
        if serializer.is_valid():
            tenant_update(tenant=tenant, fields=serializer.validated_data)
            messages.success(request, "Allowed origins saved.")
            return redirect("dashboard:widget")
        errors = _origin_errors(lines, serializer.errors.get("allowed_origins"))
    origin = _origin(request)
    context = {
        "section": "widget",
        "origin": origin,
        "script_url": f"{origin}/widget/v1/herald.js",
        "origins_text": origins_text,
        "origin_errors": errors,
        "strings_text": strings_text,
        "strings_errors": strings_errors,
    }
    return render(request, "dashboard/widget.html", context)


def _strings_text(strings: dict[str, Any]) -> str:
    return json.dumps(strings, ensure_ascii=False, indent=2) if strings else ""


def _save_strings(tenant: Tenant, text: str) -> list[str]:
    """Validate the JSON as PATCH /api/v1/tenant would and save it; the errors, if any."""
    try:
        value = safejson.loads(text) if text.strip() else {}
    except ValueError as error:  # malformed, nested too deep, or holding NUL
        return [f"Not valid JSON: {error}"]
    serializer = TenantUpdateSerializer(data={"widget_strings": value})
    if not serializer.is_valid():
        return [str(message) for message in serializer.errors.get("widget_strings", [])]
    tenant_update(tenant=tenant, fields=serializer.validated_data)
    return []


def _origin_errors(lines: list[str], raw: Any) -> list[str]:
    """Name the offending lines: DRF reports list errors as {index: [messages]}."""
    if isinstance(raw, dict):
        return [
            f"Line “{lines[int(index)]}”: {' '.join(str(m) for m in problems)}"
            for index, problems in sorted(raw.items(), key=lambda item: int(item[0]))
        ]
    return [str(message) for message in (raw or ["Invalid origins."])]


@admin_required
@require_POST
def preview_token(request: HttpRequest) -> HttpResponse:
    """An end-user token for the preview user (the dashboard's session and CSRF token vouch)."""
    tenant = dashboard_tenant(request)
    with transaction.atomic():
        user, _created = user_upsert(
            external_id=PREVIEW_USER, fields={"name": "Widget preview", "email": ""}
        )
    issued = end_user_token_issue(tenant=tenant, end_user_pk=user.pk, external_id=user.external_id)
    return JsonResponse({"token": issued.token, "expires_at": issued.expires_at.isoformat()})


@admin_required
@require_POST
def preview_send(request: AdminHttpRequest) -> HttpResponse:
    """Send the preview user an in-app notification, so the preview shows one arrive live."""
    tenant = dashboard_tenant(request)
    usage = measure(request, scope="login")  # a per-IP brake: this button must not flood
    if usage is not None and usage.limited:
        return JsonResponse({"error": "Too many previews; wait a minute."}, status=429)
    body: dict[str, Any] = {
        "type": PREVIEW_TYPE,
        "recipients": [PREVIEW_USER],
        "title": "Hello from Herald",
        "message": f"This is how {tenant.name}'s notifications look in your app.",
        "channels": ["in_app"],
    }
    try:
        notification_send(
            tenant=tenant,
            request=SendInput(
                type=PREVIEW_TYPE,
                recipients=[RecipientInput(external_id=PREVIEW_USER)],
                title=body["title"],
                message=body["message"],
                channels=["in_app"],
            ),
            fingerprint=request_fingerprint(body),
            idempotency_key=None,
            actor=f"dashboard:{request.user.email}",
        )
    except DomainError as exc:  # the quota: the same refusal the API gives
        return JsonResponse({"error": exc.message}, status=http_status(exc))
    return JsonResponse({"sent": True}, status=202)
