"""Notification types and their email templates: list, create, edit, live preview, test email.

The preview answers with the rendered email itself, shown in ``<iframe sandbox>``. It carries
its own Content-Security-Policy (no scripts, no requests; inline styles, as emails use them)
instead of the dashboard's, and may only be framed by the dashboard's own pages.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing_stub.limits import limits_for
from dashboard.access import admin_required, dashboard_tenant, object_or_404
from dashboard.forms_content import (
    TEMPLATE_FIELDS,
    PreviewForm,
    TypeForm,
    page_param,
    pager,
    rules_initial,
    sample_initial,
)
from dashboard.forms_locales import BaseLocaleFormSet, locale_formset, posted_locales
from dashboard.refusals import form_refusal
from dashboard.selectors_content import type_page
from dashboard.services_content import (
    TEST_EMAILS_PER_MINUTE,
    EmailTestError,
    LocalisedPreview,
    Sample,
    email_test_send,
    email_test_wait,
    localised_preview,
)
from dashboard.templatetags.content_links import type_url
from herald.domain import DomainError, NotInPlan
from notifications.channels.email.sending import sender
from notifications.models import IN_APP, NotificationType
from notifications.services.types import type_upsert
from notifications.templating import TemplateError, limits
from tenants.models import Tenant
from tenants.requests import AdminHttpRequest

PREVIEW_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
    "frame-ancestors 'self'; sandbox"
)
# What templates can use, as the worker renders them (notifications.channels.email).
TEMPLATE_VARIABLES = [
    ("title", "The send's title (may be blank)."),
    ("message", "The send's message."),
    ("url", "The send's link (may be blank)."),
    ("data", "The send's data object: {{ data.order_id }}."),
    ("type", "This type's key."),
    ("user.id", "The recipient's id in your app."),
    ("user.name", "The recipient's name (may be blank)."),
    ("user.email", "The recipient's email address."),
    ("user.locale", "The recipient's locale, e.g. de-AT (may be blank)."),
    ("tenant.name", "Your organisation's name."),
    ("unsubscribe_url", "The one-click unsubscribe link for this type's email."),
]

# Liquid as tenants write it (notifications.templating): the filters and tags most emails need.
TEMPLATE_FILTERS = [
    ("{{ message | truncate: 100 }}", "At most 100 characters, ending in '...'."),
    ("{{ user.name | default: 'there' }}", "A fallback for a blank or missing value."),
    ("{{ title | upcase }} {{ title | downcase }}", "Upper or lower case."),
    ("{{ message | newline_to_br }}", "Line breaks as <br> (HTML)."),
    ("{{ data.note | escape }} {{ data.html | safe }}", "Escape, or keep HTML as it is."),
    ("{{ data.tags | join: ', ' }} {{ data.items | size }}", "Join a list; count items."),
    ("{{ data.due | date: '%d %b %Y' }}", "Format a date (strftime)."),
    ("{{ url | url_encode }} {{ message | strip_html }}", "Encode for a URL; drop HTML tags."),
    (
        "{% if url %}…{% elsif title %}…{% else %}…{% endif %}",
        "Conditions: and, or, ==, !=, <, >, contains.",
    ),
    ("{% unless url %}…{% endunless %}", "The opposite of if (Liquid has no not)."),
    (
        "{% for item in data.items %}{{ forloop.index }}{% else %}…{% endfor %}",
        "Loops; else when empty.",
    ),
    ("{% assign n = data.items | size %}", "A variable of your own."),
]


def _template_limits() -> dict[str, Any]:
    bounds = limits()
    return {
        "loop_iterations": f"{bounds.loop_iterations:,}",
        "output_kib": bounds.output_bytes // 1024,
        "render_seconds": f"{bounds.render_seconds:g}",
    }


def _host(request: HttpRequest, tenant: Tenant) -> str:
    domain = tenant.get_primary_domain()
    return domain.domain if domain is not None else request.get_host().rsplit(":", 1)[0]


@admin_required
@require_GET
def type_list(request: HttpRequest) -> HttpResponse:
    before, bad_cursor = page_param(request, "before")
    page = type_page(before=before)
    return render(
        request,
        "dashboard/types/list.html",
        {
            "section": "types",
            "page": page,
            "bad_cursor": bad_cursor,
            "pager": pager(request, "before", page.next_before),
        },
    )


@admin_required
@require_http_methods(["GET", "POST"])
def type_create(request: HttpRequest) -> HttpResponse:
    tenant = dashboard_tenant(request)
    form = TypeForm(request.POST or None, creating=True, initial={"channels": [IN_APP]})
    locales = locale_formset(request.POST, {})
    if form.is_bound and _valid(form, locales):
        key = form.cleaned_data["key"]
        if _saved(form, locales, tenant=tenant, key=key):
            messages.success(request, f"Type {key} created.")
            return redirect(type_url(key))
    return _editor(request, tenant, form, locales, None)


@admin_required
@require_http_methods(["GET", "POST"])
def type_edit(request: HttpRequest, key: str) -> HttpResponse:
    tenant = dashboard_tenant(request)
    notification_type = object_or_404(NotificationType.objects.all(), key=key)
    form = TypeForm(
        request.POST or None,
        creating=False,
        initial={
            "name": notification_type.name,
            "channels": notification_type.channels,
            "critical": notification_type.critical,
            "digest_window_seconds": notification_type.digest_window_seconds,
            **{name: getattr(notification_type, name) for name in TEMPLATE_FIELDS},
            **rules_initial(notification_type.channel_rules or {}),
        },
    )
    locales = locale_formset(request.POST, notification_type.locales)
    if form.is_bound and _valid(form, locales) and _saved(form, locales, tenant=tenant, key=key):
        messages.success(request, f"Type {key} saved.")
        return redirect(type_url(key))
    return _editor(request, tenant, form, locales, notification_type)


# The editor says what to do about a refused digest window.
TYPE_WORDING: dict[type[DomainError], str] = {
    NotInPlan: "Your plan does not include digests. Leave this blank, or upgrade your plan."
}


def _valid(form: TypeForm, locales: BaseLocaleFormSet) -> bool:
    """Both parts valid; both checked, so one submission shows every problem."""
    form_ok = form.is_valid()
    return (locales.is_valid() or not locales.is_bound) and form_ok


def _saved(form: TypeForm, locales: BaseLocaleFormSet, *, tenant: Tenant, key: str) -> bool:
    """Save the valid ``form`` and ``locales`` as type ``key``; False, with the refusal on the
    forms, if the service refused it."""
    try:
        type_upsert(
            tenant=tenant, key=key, fields=form.fields_for_upsert(key), locales=locales.locales()
        )
    except DomainError as exc:
        if not locales.apply_refusal(exc):
            form_refusal(form, exc, TYPE_WORDING)
        return False
    return True


def _editor(
    request: HttpRequest,
    tenant: Tenant,
    form: TypeForm,
    locales: BaseLocaleFormSet,
    notification_type: NotificationType | None,
) -> HttpResponse:
    """The editor page; 400 when a posted form was refused (nothing was written)."""
    preview = PreviewForm(request.POST or None, initial=sample_initial())
    if form.is_bound:
        templates = tuple(form.data.get(name, "") for name in TEMPLATE_FIELDS)
        texts = posted_locales(form.data)
    elif notification_type is not None:
        templates = tuple(getattr(notification_type, name) for name in TEMPLATE_FIELDS)
        texts = notification_type.locales
    else:
        templates = ("", "", "")
        texts = {}
    rendered, error = _preview(
        tenant, notification_type.key if notification_type else "preview", templates, texts,
        Sample().user_locale, Sample(), _host(request, tenant),
    )  # fmt: skip
    refused = form.is_bound and (bool(form.errors) or locales.total_error_count() > 0)
    return render(
        request,
        "dashboard/types/edit.html",
        {
            "section": "types",
            "form": form,
            "locale_forms": locales,
            "refused": refused,
            "preview_form": preview,
            "type": notification_type,
            "rendered": rendered.email if rendered else None,
            "localised": rendered,
            "preview_error": error,
            "sample": Sample(),
            "sender": sender(tenant),
            "variables": TEMPLATE_VARIABLES,
            "filters": TEMPLATE_FILTERS,
            "limits": _template_limits(),
            "digest_allowed": limits_for(tenant).digest_allowed,
            "test_emails_per_minute": TEST_EMAILS_PER_MINUTE,
        },
        status=400 if form.is_bound else 200,
    )


def _preview(
    tenant: Tenant,
    key: str,
    templates: tuple[str, ...],
    locales: Mapping[str, Mapping[str, str]],
    locale: str,
    sample: Sample,
    host: str,
) -> tuple[LocalisedPreview | None, str]:
    try:
        rendered = localised_preview(
            tenant=tenant,
            key=key,
            templates=(templates[0], templates[1], templates[2]),
            locales=locales,
            locale=locale,
            sample=sample,
            host=host,
        )
    except TemplateError as exc:
        return None, str(exc)
    return rendered, ""


def _preview_document(request: HttpRequest, rendered: LocalisedPreview | None, error: str) -> Any:
    if rendered is not None:
        response = HttpResponse(rendered.email.html, content_type="text/html; charset=utf-8")
    else:
        body = render_to_string("dashboard/types/preview_error.html", {"error": error}, request)
        response = HttpResponse(body, content_type="text/html; charset=utf-8", status=400)
    response["Content-Security-Policy"] = PREVIEW_POLICY
    response["Referrer-Policy"] = "no-referrer"
    return response


@xframe_options_sameorigin
@admin_required
@require_http_methods(["GET", "POST"])
def type_preview(request: HttpRequest) -> HttpResponse:
    """POST: the editor's templates rendered for its sample, as the HTML document (for the
    frame) or, with ``?format=json``, ``{"subject", "text", "error"}`` (for the page). GET: the
    default templates, the frame's content before any edit."""
    tenant = dashboard_tenant(request)
    as_json = request.GET.get("format") == "json"
    if request.method == "GET":
        rendered, error = _preview(
            tenant, "preview", ("", "", ""), {}, Sample().user_locale, Sample(),
            _host(request, tenant),
        )  # fmt: skip
        return _preview_document(request, rendered, error)
    form = PreviewForm(request.POST)
    if form.is_valid():
        rendered, error = _preview(
            tenant, form.key_for_preview(), form.templates(), form.locales(), form.locale(),
            form.sample(), _host(request, tenant),
        )  # fmt: skip
    else:
        rendered, error = None, form.error_text()
    if as_json:
        body = {
            "subject": rendered.email.subject if rendered else None,
            "text": rendered.email.text if rendered else None,
            "locale": rendered.locale if rendered else None,
            "title": rendered.title if rendered else None,
            "message": rendered.message if rendered else None,
            "sources": rendered.sources if rendered else None,
            "error": error or None,
        }
        return JsonResponse(body, status=200 if rendered else 400)
    return _preview_document(request, rendered, error)


@xframe_options_sameorigin
@admin_required
@require_GET
def type_saved_preview(request: HttpRequest, key: str) -> HttpResponse:
    """The saved templates of a type, rendered for the default sample."""
    tenant = dashboard_tenant(request)
    notification_type = object_or_404(NotificationType.objects.all(), key=key)
    templates = tuple(getattr(notification_type, name) for name in TEMPLATE_FIELDS)
    rendered, error = _preview(
        tenant, key, templates, notification_type.locales, Sample().user_locale, Sample(),
        _host(request, tenant),
    )  # fmt: skip
    return _preview_document(request, rendered, error)


@admin_required
@require_POST
def type_test_email(request: AdminHttpRequest, key: str) -> HttpResponse:
    tenant = dashboard_tenant(request)
    notification_type = object_or_404(NotificationType.objects.all(), key=key)
    admin = request.user
    wait = email_test_wait(tenant=tenant, admin_id=admin.pk)
    if wait is not None:
        messages.error(
            request,
            f"You can send {TEST_EMAILS_PER_MINUTE} test emails a minute. "
            f"Try again in {wait} seconds.",
        )
        return redirect(type_url(key))
    try:
        subject = email_test_send(
            tenant=tenant,
            notification_type=notification_type,
            to_email=admin.email,
            to_name=getattr(admin, "name", ""),
            host=_host(request, tenant),
        )
    except EmailTestError as exc:
        messages.error(request, f"The test email was not sent. {exc}")
    else:
        messages.success(request, f"Test email “{subject}” sent to {admin.email}.")
    return redirect(type_url(key))
