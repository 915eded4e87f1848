"""Password reset by email for tenant admins, on their tenant's host only.

Django's views with our templates, plus three things:

- Links are the tenant's: the email's link names the host it was asked for on, and the token
  signs the tenant's schema too, so tenant A's link is refused on tenant B's host even where
  the user ids match (every tenant's first admin is user 1).
- Nothing tells whether an address has an account: the page answers the same either way, and
  the email goes out from a background thread, so the response time does not tell either.
- Limited per IP (``password-reset``, a form page with a message) and per address (at most
  three emails an hour to one admin, silently: saying so would reveal the account).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.password_validation import (
    password_validators_help_texts as password_hints,
)
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.core.mail import EmailMultiAlternatives
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template import loader
from django.urls import reverse_lazy

from dashboard.access import dashboard_tenant
from herald.ratelimits import measure, measure_address
from tenants.entry import current_schema

logger = logging.getLogger(__name__)

_mailer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="password-reset-mail")


class TenantTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset tokens (one use: they sign the password hash and last login), also
    signing the schema they were made in. Use inside the tenant's schema."""

    key_salt = "herald.dashboard.password-reset.v1"

    def _make_hash_value(self, user: Any, timestamp: int) -> str:
        return f"{current_schema()}:{super()._make_hash_value(user, timestamp)}"


token_generator = TenantTokenGenerator()


def _send(message: EmailMultiAlternatives, user_pk: int) -> None:
    try:
        message.send()
    except Exception:  # a background thread: nobody else would see it
        logger.exception("Failed to send a password reset email to user %s", user_pk)


class PasswordResetForm(auth_forms.PasswordResetForm):
    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        """Render here, send from a background thread (see the module docstring)."""
        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        message = EmailMultiAlternatives(subject, body, from_email, [to_email])
        _mailer.submit(_send, message, context["user"].pk)


class _OnTenantHost:
    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.tenant = dashboard_tenant(request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]  # a mixin: super() is the view it is mixed into, which mypy cannot see


class PasswordResetView(_OnTenantHost, auth_views.PasswordResetView):
    form_class = PasswordResetForm
    template_name = "dashboard/password/reset_form.html"
    subject_template_name = "dashboard/password/reset_subject.txt"
    email_template_name = "dashboard/password/reset_email.txt"
    success_url = reverse_lazy("dashboard:password-reset-done")
    token_generator = token_generator

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        usage = measure(request, scope="password-reset")
        if usage is not None and usage.limited:
            minutes = max(1, round(usage.reset / 60))
            context = self.get_context_data(form=self.get_form(), rate_limited_minutes=minutes)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(usage.reset)
            return response
        return super().post(request, *args, **kwargs)

    def form_valid(self, form: auth_forms.PasswordResetForm) -> HttpResponse:
        usage = measure_address(
            self.request, tenant_id=self.tenant.pk, email=form.cleaned_data["email"]
        )
        if usage is not None and usage.limited:
            return HttpResponseRedirect(self.get_success_url())  # the same answer as ever
        self.extra_email_context = {"tenant_name": self.tenant.name}
        return super().form_valid(form)


class PasswordResetDoneView(_OnTenantHost, auth_views.PasswordResetDoneView):
    template_name = "dashboard/password/reset_done.html"


class PasswordResetConfirmView(_OnTenantHost, auth_views.PasswordResetConfirmView):
    template_name = "dashboard/password/reset_confirm.html"
    success_url = reverse_lazy("dashboard:password-reset-complete")
    token_generator = token_generator

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return {**super().get_context_data(**kwargs), "password_hints": password_hints()}


class PasswordResetCompleteView(_OnTenantHost, auth_views.PasswordResetCompleteView):
    template_name = "dashboard/password/reset_complete.html"
