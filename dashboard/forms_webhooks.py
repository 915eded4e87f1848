"""The webhook endpoint form of the dashboard.

It only collects what a browser posts; the rules are the endpoint services' own
(``notifications.services.webhook_endpoints``), whose refusals land on these fields through
``dashboard.refusals``. So the page and the API accept and refuse the same input.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms

from notifications.services.webhook_endpoints import DESCRIPTION_MAX_LENGTH, URL_MAX_LENGTH
from notifications.webhooks.events import WEBHOOK_EVENT_CHOICES

TYPES_MAX_LENGTH = 10_000


class WebhookEndpointForm(forms.Form):
    url = forms.CharField(
        label="URL",
        max_length=URL_MAX_LENGTH,
        strip=True,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/herald"}),
        help_text="https, on a host with public addresses only.",
    )
    description = forms.CharField(
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        help_text="Say what receives it, e.g. “CRM (production)”.",
    )
    events = forms.MultipleChoiceField(
        required=False,
        choices=WEBHOOK_EVENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        help_text="None ticked: every event.",
    )
    types = forms.CharField(
        required=False,
        max_length=TYPES_MAX_LENGTH,
        label="Notification types",
        widget=forms.TextInput(attrs={"placeholder": "billing.invoice, comment.created"}),
        help_text="Type keys, separated by commas or spaces. Empty: every type.",
    )

    def clean_types(self) -> list[str]:
        return [key for key in re.split(r"[\s,]+", self.cleaned_data["types"]) if key]

    def values(self) -> dict[str, Any]:
        """The fields as the endpoint services take them (after ``is_valid()``)."""
        return {name: self.cleaned_data[name] for name in ("url", "description", "events", "types")}


def endpoint_initial(endpoint: Any) -> dict[str, Any]:
    return {
        "url": endpoint.url,
        "description": endpoint.description,
        "events": list(endpoint.events),
        "types": ", ".join(endpoint.types),
    }
