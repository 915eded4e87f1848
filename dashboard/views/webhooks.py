"""Webhooks: endpoints (create, edit, enable or disable, rotate the secret, send a test event,
delete) and each endpoint's recent deliveries, with a retry for failed ones.

The same services as ``/api/v1/webhook-endpoints``. A new or rotated secret waits in the session
only until the endpoint's page shows it, right after the redirect that follows the POST, so a
reload neither repeats the action nor shows the secret again.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from billing_stub.limits import limits_for
from dashboard.access import admin_required, dashboard_tenant, object_or_404
from dashboard.forms_webhooks import WebhookEndpointForm, endpoint_initial
from dashboard.refusals import form_refusal, message_refusal
from herald.domain import DomainError
from notifications import webhook_selectors as selectors
from notifications.models import WebhookEndpoint
from notifications.services.webhook_endpoints import (
    RETRYABLE,
    webhook_delivery_retry,
    webhook_endpoint_create,
    webhook_endpoint_delete,
    webhook_endpoint_rotate_secret,
    webhook_endpoint_test,
    webhook_endpoint_update,
)
from notifications.webhooks.events import WEBHOOK_EVENTS

SHOWN_ONCE = "webhook_shown_once"  # the session key of a secret to show
LISTED = 100  # endpoints on the list page (a plan allows far fewer)
RECENT_DELIVERIES = 25
ATTEMPTS_SHOWN = 5


def _endpoint_url(endpoint_id: int) -> str:
    return f"/dashboard/webhooks/{endpoint_id}"


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    form = WebhookEndpointForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                endpoint, secret = webhook_endpoint_create(tenant=tenant, **form.values())
            except DomainError as error:
                form_refusal(form, error)
            else:
                request.session[SHOWN_ONCE] = {
                    "endpoint": endpoint.pk,
                    "secret": secret,
                    "rotated": False,
                }
                return redirect(_endpoint_url(endpoint.pk))
        status = 400
    endpoints = list(selectors.webhook_endpoint_list().order_by("-id")[:LISTED])
    context = {
        "section": "webhooks",
        "form": form,
        "endpoints": endpoints,
        "limit": limits_for(tenant).max_webhook_endpoints,
        "all_events": WEBHOOK_EVENTS,
    }
    return render(request, "dashboard/webhooks/list.html", context, status=status)


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    return object_or_404(WebhookEndpoint.objects.all(), pk=endpoint_id)


@admin_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    form = WebhookEndpointForm(
        request.POST if request.method == "POST" else None, initial=endpoint_initial(endpoint)
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                webhook_endpoint_update(
                    tenant=dashboard_tenant(request), endpoint=endpoint, **form.values()
                )
            except DomainError as error:
                form_refusal(form, error)
            else:
                messages.success(request, "Endpoint saved.")
                return redirect(_endpoint_url(endpoint.pk))
        status = 400
    new_secret = None
    if status == 200:
        waiting = request.session.get(SHOWN_ONCE)
        if waiting and waiting.get("endpoint") == endpoint.pk:
            new_secret = request.session.pop(SHOWN_ONCE)
    deliveries = list(
        selectors.webhook_delivery_list(endpoint_id=endpoint.pk).order_by("-id")[:RECENT_DELIVERIES]
    )
    attempts = selectors.webhook_attempts_by_delivery(
        delivery_ids=[delivery.pk for delivery in deliveries], per_delivery=ATTEMPTS_SHOWN
    )
    rows: list[dict[str, Any]] = [
        {
            "delivery": delivery,
            "attempts": attempts[delivery.pk],
            "retryable": endpoint.enabled and delivery.status in RETRYABLE,
        }
        for delivery in deliveries
    ]
    context = {
        "section": "webhooks",
        "endpoint": endpoint,
        "form": form,
        "new_secret": new_secret,
        "rows": rows,
        "recent": RECENT_DELIVERIES,
    }
    return render(request, "dashboard/webhooks/detail.html", context, status=status)


@admin_required
@require_POST
def webhook_enabled(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    enabled = request.POST.get("enabled") == "true"
    webhook_endpoint_update(tenant=dashboard_tenant(request), endpoint=endpoint, enabled=enabled)
    if enabled:
        messages.success(request, "Endpoint enabled: new events are delivered to it again.")
    else:
        messages.success(request, "Endpoint disabled: no events are queued for it meanwhile.")
    return redirect(_endpoint_url(endpoint.pk))


@admin_required
@require_POST
def webhook_rotate_secret(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    secret = webhook_endpoint_rotate_secret(endpoint=endpoint)
    request.session[SHOWN_ONCE] = {"endpoint": endpoint.pk, "secret": secret, "rotated": True}
    return redirect(_endpoint_url(endpoint.pk))


@admin_required
@require_POST
def webhook_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    try:
        webhook_endpoint_test(tenant=dashboard_tenant(request), endpoint=endpoint)
    except DomainError as error:
        message_refusal(request, error)
    else:
        messages.success(request, "Test event queued: it appears below once attempted.")
    return redirect(_endpoint_url(endpoint.pk))


@admin_required
@require_POST
def webhook_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = _endpoint(endpoint_id)
    webhook_endpoint_delete(endpoint=endpoint)
    messages.success(request, f"Deleted the endpoint {endpoint.url}.")
    return redirect("dashboard:webhooks")


@admin_required
@require_POST
def webhook_delivery_retry_view(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = object_or_404(selectors.webhook_delivery_list(), pk=delivery_id)
    try:
        webhook_delivery_retry(tenant=dashboard_tenant(request), delivery=delivery)
    except DomainError as error:
        message_refusal(request, error)
    else:
        messages.success(request, f"Delivery #{delivery.pk} queued again.")
    return redirect(_endpoint_url(delivery.endpoint_id))
