"""How the dashboard shows a service's refusal (a ``herald.domain`` error): the one place that
turns them into form errors and page messages, as ``herald.errors`` does for the API."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.contrib import messages
from django.http import HttpRequest

from herald.domain import DomainError


def form_refusal(
    form: forms.Form,
    error: DomainError,
    wording: Mapping[type[DomainError], str] | None = None,
) -> None:
    """Show ``error`` on ``form``. With a ``wording`` for its kind: that text, on each field the
    error names that the form has, else above the form. Otherwise each field's messages in the
    error's ``details`` go on that field (above the form for a field the form lacks), and the
    error's message goes above the form when the details name no field."""
    named = [name for name in (error.details or {}) if name in form.fields]
    for kind, text in (wording or {}).items():
        if isinstance(error, kind):
            for name in named:
                form.add_error(name, text)
            if not named:
                form.add_error(None, text)
            return
    shown = False
    for name, texts in (error.details or {}).items():
        if isinstance(texts, list) and all(isinstance(text, str) for text in texts):
            form.add_error(name if name in form.fields else None, texts)
            shown = True
    if not shown:
        form.add_error(None, error.message)


def message_refusal(request: HttpRequest, error: DomainError) -> None:
    """Show ``error`` as a message on the next page (after a redirect)."""
    messages.error(request, error.message)
