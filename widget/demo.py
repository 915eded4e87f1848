"""The widget's demo page, for development only (``DEBUG``): the widget running against the tenant
of the host, for a demo end user, with a button that sends that user a notification.

``http://demo.localhost:8000/widget/demo`` after ``bin/run``. With ``DEBUG`` off every URL here
is a 404. The page plays the customer's web app: it fetches end-user tokens from its own backend
(``demo/token``, which this module plays too), and is served under a strict CSP, as the widget
must work under one.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt, csrf_protect, ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from herald.domain import DomainError
from herald.errors import http_status
from notifications.services.sending import SendInput, notification_send, request_fingerprint
from notifications.services.users import RecipientInput, user_upsert
from tenants.requests import PlatformHttpRequest, TenantHttpRequest
from tenants.tokens import end_user_token_issue
from widget.views import immutable_path

DEMO_USER = "widget-demo-user"
DEMO_TYPE = "widget.demo"
MAX_BURST = 25
SAMPLES = [
    ("New comment", "Ana replied to your post “Quarterly plan”.", "https://example.com/posts/42"),
    ("Build passed", "main is green again: 214 tests in 3 min 12 s.", "https://example.com/ci/981"),
    ("Invoice paid", "Invoice #2024-117 was paid by Globex. €1,240.00", ""),
    ("You were mentioned", "@you can you review the launch checklist?", "https://example.com/t/7"),
    ("Escaping check", '<img src=x onerror="alert(1)"> <b>stays plain text</b>', ""),
    ("", "A notification without a title shows its message alone.", ""),
]


def _development_tenant_host(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 unless DEBUG is on and the request is on a tenant's host; then the CSRF check.

    The CSRF check comes second, so that with DEBUG off a POST gets the same 404 as a GET."""
    protected = csrf_protect(view)

    @csrf_exempt
    @wraps(view)
    def wrapper(request: PlatformHttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not settings.DEBUG or getattr(request, "tenant", None) is None:
            raise Http404("The widget demo runs only in development mode, on a tenant's host.")
        if request.is_platform_host:
            raise Http404("The widget demo runs on a tenant's host.")
        return protected(request, *args, **kwargs)

    return wrapper


def _policy(host: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            f"connect-src 'self' ws://{host} wss://{host}",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
        ]
    )


@_development_tenant_host
@require_GET
@ensure_csrf_cookie
def demo_page(request: TenantHttpRequest) -> HttpResponse:
    origin = request.build_absolute_uri("/").rstrip("/")
    context = {
        "tenant": request.tenant,
        "api_url": origin,
        "script_url": immutable_path(),
        "public_script_url": f"{origin}/widget/v1/herald.js",
        "demo_user": DEMO_USER,
        "max_burst": MAX_BURST,
        "sent": request.GET.get("sent") == "1",
    }
    response = render(request, "widget/demo.html", context)
    response["Content-Security-Policy"] = _policy(request.get_host())
    return response


@_development_tenant_host
@require_POST
def demo_token(request: TenantHttpRequest) -> JsonResponse:
    """What a customer's backend does for its signed-in user: ask Herald for a token."""
    with transaction.atomic():
        user, _created = user_upsert(external_id=DEMO_USER, fields={"name": "Demo user"})
    issued = end_user_token_issue(
        tenant=request.tenant, end_user_pk=user.pk, external_id=user.external_id
    )
    return JsonResponse({"token": issued.token, "expires_at": issued.expires_at.isoformat()})


def _count(raw: str | None) -> int | None:
    if raw in (None, ""):
        return 1
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_BURST:
        return None
    return int(raw)


@_development_tenant_host
@require_POST
def demo_send(request: TenantHttpRequest) -> HttpResponse:
    """Send the demo user ``count`` notifications (1 to 25) through the real sending service."""
    wants_json = "application/json" in request.headers.get("Accept", "")
    count = _count(request.POST.get("count"))
    if count is None:
        message = f"count must be a whole number from 1 to {MAX_BURST}."
        return JsonResponse({"error": message}, status=400)
    offset = secrets.randbelow(len(SAMPLES))
    for index in range(count):
        title, message, url = SAMPLES[(offset + index) % len(SAMPLES)]
        body = {"type": DEMO_TYPE, "title": title, "message": message, "url": url, "n": index}
        try:
            notification_send(
                tenant=request.tenant,
                request=SendInput(
                    type=DEMO_TYPE,
                    recipients=[RecipientInput(external_id=DEMO_USER)],
                    title=title,
                    message=message,
                    url=url,
                    channels=["in_app"],
                ),
                fingerprint=request_fingerprint(body),
                idempotency_key=None,
                actor="widget-demo",
            )
        except DomainError as exc:  # over the plan's quota: the API's own refusal
            return JsonResponse({"error": exc.message}, status=http_status(exc))
    if wants_json:
        return JsonResponse({"sent": count}, status=202)
    return redirect("/widget/demo?sent=1")
