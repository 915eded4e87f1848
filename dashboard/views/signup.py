"""Self-serve sign-up on the platform host, and the first sign-in on the new tenant's host.

``/signup`` runs the same service as ``POST /api/v1/signup`` (``tenants.services.tenant_signup``)
under the same limits. The result page shows the API key once (it is held in the session only
until that page pops it) and a button to the tenant's host carrying a one-time welcome ticket
(``dashboard.welcome``), which ``/dashboard/welcome`` there turns into a session.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.password_validation import password_validators_help_texts
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.access import dashboard_tenant
from dashboard.forms_account import SIGNUP_FIELDS, SignupForm
from dashboard.refusals import form_refusal
from dashboard.welcome import TICKET_MAX_AGE, welcome_ticket, welcome_ticket_redeem
from herald.ratelimits import Usage, measure
from tenants.services import ProvisioningError, tenant_signup

RESULT_KEY = "signup_result"
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def tenant_address(request: HttpRequest, domain: str) -> str:
    """A tenant's host with this request's port (the platform and its tenant hosts are served
    together, behind the same proxy): ``acme.localhost:8000``."""
    _host, port = split_domain_port(request.get_host())
    return f"{domain}:{port}" if port else domain


def tenant_url(request: HttpRequest, domain: str, path: str) -> str:
    """``path`` on a tenant's host, with this request's scheme and port."""
    return f"{request.scheme}://{tenant_address(request, domain)}{path}"


def _form_page(
    request: HttpRequest, form: SignupForm, *, status: int, **extra: Any
) -> HttpResponse:
    context = {
        "form": form,
        "platform_host": settings.PLATFORM_HOST,
        "password_hints": password_validators_help_texts(),
        **extra,
    }
    return render(request, "dashboard/signup/form.html", context, status=status)


def _rate_limited(request: HttpRequest, form: SignupForm, usage: Usage) -> HttpResponse:
    minutes = max(1, round(usage.reset / 60))
    response = _form_page(request, form, status=429, rate_limited_minutes=minutes)
    response["Retry-After"] = str(usage.reset)
    return response


@require_GET
def landing(request: HttpRequest) -> HttpResponse:
    return render(request, "dashboard/signup/landing.html")


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _form_page(request, SignupForm(), status=200)

    form = SignupForm(request.POST)
    usage = measure(request)  # the API's per-IP rate, as for POST /api/v1/signup
    if usage is not None and usage.limited:
        return _rate_limited(request, form, usage)
    if not form.is_valid():
        return _form_page(request, form, status=400)
    usage = measure(request, scope="signup")  # counts only sign-ups that would go ahead
    if usage is not None and usage.limited:
        return _rate_limited(request, form, usage)
    try:
        signed_up = tenant_signup(**{name: form.cleaned_data[name] for name in SIGNUP_FIELDS})
    except ProvisioningError as exc:  # a concurrent sign-up took the slug meanwhile
        form_refusal(form, exc)
        return _form_page(request, form, status=400)

    ticket = welcome_ticket(tenant_id=signed_up.tenant.pk, user_id=signed_up.admin_id)
    request.session[RESULT_KEY] = {
        "name": signed_up.tenant.name,
        "slug": signed_up.tenant.slug,
        "address": tenant_address(request, signed_up.domain),
        "email": form.cleaned_data["email"].strip().lower(),
        "api_key": signed_up.api_key,
        "dashboard_url": tenant_url(request, signed_up.domain, "/dashboard/"),
        "continue_url": tenant_url(
            request, signed_up.domain, f"/dashboard/welcome?ticket={ticket}"
        ),
        "api_url": tenant_url(request, signed_up.domain, "/api/v1/tenant"),
    }
    return redirect("signup-done")


@require_GET
def signup_done(request: HttpRequest) -> HttpResponse:
    """The key, once: the session holds it only until this page is shown."""
    result = request.session.pop(RESULT_KEY, None)
    if result is None:
        return redirect("signup")
    context = {**result, "ticket_minutes": TICKET_MAX_AGE // 60}
    response = render(request, "dashboard/signup/done.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_GET
def welcome(request: HttpRequest) -> HttpResponse:
    """The new admin's first sign-in, on their tenant's host, from a welcome ticket."""
    tenant = dashboard_tenant(request)
    user = welcome_ticket_redeem(request.GET.get("ticket", ""), tenant=tenant)
    if user is None:
        response = render(request, "dashboard/signup/welcome_failed.html", status=400)
        response["Cache-Control"] = "no-store"
        return response
    login(request, user, backend=MODEL_BACKEND)
    messages.success(request, f"Welcome to Herald, {tenant.name}! Your account is ready.")
    return redirect("dashboard:overview")
