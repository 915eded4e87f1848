"""Forms of the account pages: sign-up, API keys, settings.

They carry no rules of their own. Each one collects strings and asks the code the API uses:
sign-up asks ``tenants.services.signup_errors`` (the provisioning rules), the others run the
API's serializers. So the page and the API accept and refuse exactly the same input, with the
same messages.
"""

from __future__ import annotations

from typing import Any

from django import forms
from rest_framework import serializers

from tenants.serializers import ApiKeyCreateSerializer, TenantUpdateSerializer
from tenants.services import signup_errors

SIGNUP_FIELDS = ("name", "slug", "email", "password")
SETTINGS_FIELDS = ("sender_name", "sender_email", "brand_color", "logo_url")


def _plain(detail: Any) -> list[str]:
    return [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]


class SerializerForm(forms.Form):
    """A form whose fields only collect text; ``serializer_class`` validates, and its errors
    land on the fields they name. ``cleaned_data`` is the serializer's ``validated_data``."""

    serializer_class: type[serializers.Serializer]

    def clean(self) -> dict[str, Any]:
        raw = {name: self.data.get(name, "") for name in self.fields}
        serializer = self.serializer_class(data=raw)
        if serializer.is_valid():
            return dict(serializer.validated_data)
        for field, detail in serializer.errors.items():
            self.add_error(field if field in self.fields else None, _plain(detail))
        return {}


class SignupForm(forms.Form):
    name = forms.CharField(max_length=1000, required=False)
    slug = forms.CharField(max_length=100, required=False)
    email = forms.CharField(max_length=254, required=False)
    password = forms.CharField(max_length=1024, required=False, strip=False)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        fields = {name: data.get(name, "") for name in SIGNUP_FIELDS}
        for field, messages in signup_errors(**fields).items():
            if field not in self.errors:  # too long already says enough
                self.add_error(field if field in self.fields else None, messages)
        return data


class ApiKeyForm(SerializerForm):
    serializer_class = ApiKeyCreateSerializer
    name = forms.CharField(required=False, strip=False)


class SettingsForm(SerializerForm):
    """Sender and branding; ``allowed_origins`` belongs to the widget page."""

    serializer_class = TenantUpdateSerializer
    sender_name = forms.CharField(required=False, strip=False)
    sender_email = forms.CharField(required=False, strip=False)
    brand_color = forms.CharField(required=False, strip=False)
    logo_url = forms.CharField(required=False, strip=False)
