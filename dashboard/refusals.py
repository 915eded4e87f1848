"""How the dashboard shows a service's refusal (a ``herald.domain`` error): the one place that
turns them into form errors and page messages, as ``herald.errors`` does for the API."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from herald.domain import DomainError


def refusal_text(error: DomainError, wording: Mapping[type[DomainError], str] | None = None) -> str:
    """What to tell the admin: ``wording`` for the first kind ``error`` is (a page may say it
    in its own terms, e.g. what to do next), else the error's own message."""
    for kind, text in (wording or {}).items():
        if isinstance(error, kind):
            return text
    return error.message


def form_refusal(
    form: forms.Form,
    error: DomainError,
    wording: Mapping[type[DomainError], str] | None = None,
) -> None:
    """Show ``error`` on ``form``: on each field it names that the form has, else above it."""
    text = refusal_text(error, wording)
    fields = [name for name in (error.details or {}) if name in form.fields]
    for name in fields:
        form.add_error(name, text)
    if not fields:
        form.add_error(None, text)


def message_refusal(request: HttpRequest, error: DomainError) -> None:
    """Show ``error`` as a message on the next page (after a redirect)."""
    messages.error(request, refusal_text(error))
