"""Settings: the email sender and branding, the plan and its limits, and the usage report.

Changes go through ``tenants.services.tenant_update`` after the API's own validation
(``TenantUpdateSerializer``, via ``SettingsForm``). The widget's allowed origins are edited on the
widget page.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from billing_stub.limits import limits_for
from dashboard.access import admin_required, dashboard_tenant
from dashboard.forms_account import SETTINGS_FIELDS, SettingsForm
from dashboard.selectors_account import report_periods, usage_report_for
from tenants.selectors import tenant_domains
from tenants.services import tenant_update


@admin_required
@require_http_methods(["GET", "POST"])
def settings_page(request: HttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    if request.method == "POST":
        form = SettingsForm(request.POST)
        if form.is_valid():
            tenant_update(tenant=tenant, fields=form.cleaned_data)
            messages.success(request, "Settings saved.")
            return redirect("dashboard:settings")
        status = 400
    else:
        form = SettingsForm(initial={name: getattr(tenant, name) for name in SETTINGS_FIELDS})
        status = 200
    context = {
        "section": "settings",
        "form": form,
        "values": form.data if form.is_bound else form.initial,
        "limits": limits_for(tenant),
        "plan": tenant.plan,
        "domains": tenant_domains(tenant=tenant),
    }
    return render(request, "dashboard/settings/settings.html", context, status=status)


@admin_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    """The usage report (what an invoice is built from) for a month, ``?period=YYYY-MM``."""
    tenant = dashboard_tenant(request)
    periods = report_periods(tenant=tenant)
    chosen = request.GET.get("period") or periods[0].key
    period = next((p for p in periods if p.key == chosen), None)
    if period is None:
        messages.error(request, "Choose one of the listed months.")
        return redirect("dashboard:usage")
    context = {
        "section": "settings",
        "periods": periods,
        "period": period,
        "report": usage_report_for(tenant=tenant, period=period),
    }
    return render(request, "dashboard/settings/usage.html", context)
