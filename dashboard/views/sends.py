"""The send log, a send's detail (with cancel), and the test-send form."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from dashboard.access import admin_required, dashboard_tenant, object_or_404
from dashboard.forms_content import NotificationTestForm, SendFilterForm, page_param, pager
from dashboard.refusals import form_refusal, message_refusal
from dashboard.selectors_content import (
    SendFilters,
    send_log,
    send_recipients,
    user_suggestions,
)
from dashboard.services_content import NotificationTest, notification_test_send
from dashboard.templatetags.content_links import send_url
from herald.domain import Conflict, DomainError
from notifications.channels.names import CHANNEL_LABELS
from notifications.models import Delivery, Send
from notifications.selectors import send_channel_summary
from notifications.services.sending import send_cancel
from tenants.requests import AdminHttpRequest

# The test-send form's idempotency key is the form's own: a conflict means a resubmission.
TEST_SEND_WORDING: dict[type[DomainError], str] = {
    Conflict: "This form was already sent with other values. Reload the page to send again."
}


@admin_required
@require_GET
def send_list(request: HttpRequest) -> HttpResponse:
    form = SendFilterForm(request.GET or None)
    before, bad_cursor = page_param(request, "before")
    page = None
    status = 200
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        filters = form.filters() if form.is_bound else SendFilters()
        page = send_log(filters=filters, before=before)
    return render(
        request,
        "dashboard/sends/list.html",
        {
            "section": "notifications",
            "form": form,
            "page": page,
            "bad_cursor": bad_cursor,
            "pager": pager(request, "before", page.next_before if page else None),
        },
        status=status,
    )


@admin_required
@require_GET
def send_detail(request: HttpRequest, send_id: int) -> HttpResponse:
    send = object_or_404(Send.objects.select_related("type"), pk=send_id)
    after, bad_cursor = page_param(request, "after")
    recipients = send_recipients(send=send, after=after)
    summary = send_channel_summary(send=send)
    # what escalation saved: deliveries skipped because the notification was read in time
    saved = [
        _count_of(statuses[Delivery.Status.SKIPPED_READ], CHANNEL_LABELS[channel].lower())
        for channel, statuses in summary.items()
        if statuses.get(Delivery.Status.SKIPPED_READ)
    ]
    can_cancel = send.status == Send.Status.SCHEDULED and send.send_at is not None
    return render(
        request,
        "dashboard/sends/detail.html",
        {
            "section": "notifications",
            "send": send,
            "summary": summary,
            "escalation_saved": saved,
            "payload": json.dumps(send.data, indent=2, ensure_ascii=False, sort_keys=True),
            "recipients": recipients,
            "bad_cursor": bad_cursor,
            "pager": pager(request, "after", recipients.next_after),
            "can_cancel": can_cancel,
        },
    )


def _count_of(count: int, noun: str) -> str:
    """``3 emails``, ``1 web push``, ``2 web pushes``."""
    if count == 1:
        return f"1 {noun}"
    return f"{count} {noun}{'es' if noun.endswith(('sh', 's')) else 's'}"


@admin_required
@require_POST
def send_cancel_view(request: HttpRequest, send_id: int) -> HttpResponse:
    send = object_or_404(Send.objects.select_related("type"), pk=send_id)
    try:
        send_cancel(send=send)
    except DomainError as exc:
        message_refusal(request, exc)
    else:
        messages.success(request, f"Send {send.pk} is cancelled: nobody will get it.")
    return redirect(send_url(send.pk))


@admin_required
@require_http_methods(["GET", "POST"])
def test_send(request: AdminHttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    initial = {}
    if request.method == "GET":
        initial = {name: request.GET[name] for name in ("recipient", "type") if name in request.GET}
    form = NotificationTestForm(request.POST or None, initial=initial)
    status = 200
    if form.is_bound:
        if form.is_valid():
            data = form.cleaned_data
            try:
                send_id = notification_test_send(
                    tenant=tenant,
                    request=NotificationTest(
                        recipient=data["recipient"],
                        type=data["type"],
                        title=data["title"],
                        message=data["message"],
                        url=data["url"],
                        channels=data["channels"] or None,
                        idempotency_key=data["idempotency_key"],
                    ),
                    admin_id=request.user.pk,
                )
            except DomainError as exc:
                form_refusal(form, exc, TEST_SEND_WORDING)
            else:
                messages.success(request, f"Test notification sent to {data['recipient']}.")
                return redirect(send_url(send_id))
        status = 400
    return render(
        request,
        "dashboard/sends/test.html",
        {
            "section": "notifications",
            "form": form,
            "suggestions": user_suggestions(prefix=""),
        },
        status=status,
    )


@admin_required
@require_GET
def recipient_suggestions(request: HttpRequest) -> JsonResponse:
    """Users whose id starts with ``q``: the test-send form's recipient box (sends.js)."""
    prefix = request.GET.get("q", "")[:255].replace("\x00", "")
    rows = user_suggestions(prefix=prefix)
    return JsonResponse(
        {
            "results": [
                {"id": r["external_id"], "name": r["name"], "email": r["email"]} for r in rows
            ]
        }
    )
