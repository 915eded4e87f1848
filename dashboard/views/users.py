"""End users: list and search, a user's detail (inbox, preferences, deliveries), erasure."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.access import admin_required, dashboard_tenant, object_or_404
from dashboard.forms_content import SearchForm, page_param, pager
from dashboard.forms_locales import UserLocaleForm
from dashboard.selectors_content import user_counts, user_deliveries, user_inbox, user_list
from dashboard.templatetags.content_links import user_url
from notifications.models import CHANNEL_CHOICES, EndUser
from notifications.selectors import preferences_get
from notifications.services.users import user_erase, user_upsert
from notifications.topic_selectors import topic_keys, user_topics


@admin_required
@require_GET
def user_list_view(request: HttpRequest) -> HttpResponse:
    form = SearchForm(request.GET or None)
    before, bad_cursor = page_param(request, "before")
    status, page = 200, None
    if form.is_bound and not form.is_valid():
        status = 400
    else:
        search = form.cleaned_data.get("q", "") if form.is_bound else ""
        page = user_list(search=search, before=before)
    return render(
        request,
        "dashboard/users/list.html",
        {
            "section": "users",
            "form": form,
            "page": page,
            "bad_cursor": bad_cursor,
            "pager": pager(request, "before", page.next_before if page else None),
        },
        status=status,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def user_detail(request: HttpRequest, external_id: str) -> HttpResponse:
    """GET: the user's page. POST: change their locale and time zone."""
    return _user_page(request, external_id)


def _user_page(request: HttpRequest, external_id: str) -> HttpResponse:
    if request.method == "GET":
        return _detail_page(request, external_id)
    user = object_or_404(EndUser.objects.all(), external_id=external_id)
    form = UserLocaleForm(request.POST)
    if not form.is_valid():
        return _detail_page(request, external_id, form=form, status=400)
    user_upsert(
        external_id=user.external_id,
        fields={"locale": form.cleaned_data["locale"], "timezone": form.cleaned_data["timezone"]},
    )
    messages.success(request, "Locale and time zone saved.")
    return redirect(user_url(user.external_id))


def _detail_page(
    request: HttpRequest,
    external_id: str,
    *,
    form: UserLocaleForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = object_or_404(EndUser.objects.all(), external_id=external_id)
    if form is None:
        form = UserLocaleForm(initial={"locale": user.locale, "timezone": user.timezone})
    inbox_before, bad_inbox = page_param(request, "before")
    deliveries_before, bad_deliveries = page_param(request, "deliveries_before")
    preferences = preferences_get(user=user)
    inbox = user_inbox(user=user, before=inbox_before)
    deliveries = user_deliveries(user=user, before=deliveries_before)
    channels = [key for key, _label in CHANNEL_CHOICES]
    return render(
        request,
        "dashboard/users/detail.html",
        {
            "section": "users",
            "end_user": user,
            "data": json.dumps(user.data, indent=2, ensure_ascii=False, sort_keys=True),
            "inbox": inbox,
            "inbox_pager": pager(request, "before", inbox.next_before),
            "deliveries": deliveries,
            "deliveries_pager": pager(request, "deliveries_before", deliveries.next_before),
            "bad_cursor": bad_inbox or bad_deliveries,
            "channels": CHANNEL_CHOICES,
            "global_switches": [
                (label, preferences["channels"][key]) for key, label in CHANNEL_CHOICES
            ],
            "type_switches": [
                (key, [switches[channel] for channel in channels])
                for key, switches in preferences["types"].items()
                if not all(switches.values())
            ],
            "counts": user_counts(user=user),
            "locale_form": form,
            "topics": user_topics(user=user),
            "topic_keys": topic_keys(),
        },
        status=status,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def user_erase_view(request: HttpRequest, external_id: str) -> HttpResponse:
    """POST with ``erase`` naming the user erases them. Ids may contain slashes, so this path is
    also the page of a user whose id itself ends in ``/erase``: a GET, or a POST without that
    field (their locale form), is that user's."""
    if "erase" not in request.POST:
        return _user_page(request, f"{external_id}/erase")
    if request.POST["erase"] != external_id:
        raise Http404("Not found.")  # a form for another user than the path names
    user = object_or_404(EndUser.objects.all(), external_id=external_id)
    counts = user_counts(user=user)
    user_erase(tenant_id=dashboard_tenant(request).pk, user=user)
    messages.success(
        request,
        f"Erased user {external_id} with {counts['notifications']} notification(s) and "
        f"{counts['deliveries']} delivery record(s).",
    )
    return redirect("/dashboard/users/")
