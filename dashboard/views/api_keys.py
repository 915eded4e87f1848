"""API keys: list, create (the key is shown once), revoke.

The same services as ``/api/v1/api-keys``. A new key's plaintext waits in the session only until
the list page shows it, right after the redirect that follows the POST, so a reload neither
creates another key nor shows this one again.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.access import admin_required, dashboard_tenant, object_or_404
from dashboard.formatting import ago
from dashboard.forms_account import ApiKeyForm
from tenants.requests import AdminHttpRequest
from tenants.selectors import api_key_list
from tenants.services import api_key_create, api_key_revoke

NEW_KEY = "new_api_key"
LISTED = 200  # keys on the page, newest first


@admin_required
@require_http_methods(["GET", "POST"])
def api_keys(request: AdminHttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    form = ApiKeyForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            created = api_key_create(
                tenant=tenant, name=form.cleaned_data["name"], created_by=request.user.email
            )
            request.session[NEW_KEY] = {
                "id": created.api_key.pk,
                "name": created.api_key.name,
                "key": created.plaintext,
            }
            return redirect("dashboard:api-keys")
        status = 400
    else:
        status = 200
    keys = list(api_key_list(tenant=tenant)[: LISTED + 1])
    for key in keys:
        key.last_used_ago = ago(key.last_used_at)  # type: ignore[attr-defined]  # for the template
    context = {
        "section": "api_keys",
        "form": form,
        "keys": keys[:LISTED],
        "more": len(keys) > LISTED,
        "new_key": request.session.pop(NEW_KEY, None) if status == 200 else None,
        "active_count": sum(1 for key in keys if key.is_active),
    }
    return render(request, "dashboard/api_keys/list.html", context, status=status)


@admin_required
@require_POST
def api_key_revoke_view(request: HttpRequest, key_id: int) -> HttpResponse:
    api_key = object_or_404(api_key_list(tenant=dashboard_tenant(request)), pk=key_id)
    if api_key.is_active:
        api_key_revoke(api_key=api_key)
        messages.success(
            request, f"Revoked “{api_key.name}” ({api_key.prefix}…). It no longer works."
        )
    else:
        messages.info(request, f"“{api_key.name}” was already revoked.")
    return redirect("dashboard:api-keys")
