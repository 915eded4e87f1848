from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from billing_stub.models import Plan
from herald.fields import (
    HTTP_URL_PATTERN,
    DisplayNameField,
    EmailOrBlankField,
    PatternField,
    StrictCharField,
    StrictSerializer,
)
from tenants.models import ApiKey, Tenant
from tenants.selectors import tenant_domains
from widget.locales import overrides_schema, widget_overrides

# An origin as a client may write it (any case in the host, one trailing slash); it is stored
# lowercase and without the slash.
# A port from 1 to 65535.
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
ORIGIN_PATTERN = rf"^https?://[A-Za-z0-9.-]+(:{_PORT})?/?$"
BRAND_COLOR_PATTERN = r"^#[0-9a-fA-F]{6}$"


@extend_schema_field(overrides_schema())
class WidgetStringsField(serializers.JSONField):
    """A tenant's replacements of the widget's strings (``widget.locales.widget_overrides``)."""

    def to_internal_value(self, data: Any) -> dict[str, dict[str, str]]:
        try:
            return widget_overrides(data)
        except ValueError as error:
            raise serializers.ValidationError(str(error)) from None


class TenantSerializer(serializers.ModelSerializer[Tenant]):
    plan: serializers.SlugRelatedField[Plan] = serializers.SlugRelatedField(
        slug_field="code", read_only=True
    )
    domains = serializers.SerializerMethodField()
    sender_email = EmailOrBlankField(read_only=True, help_text="The sender's address, or ''.")
    widget_strings = WidgetStringsField(read_only=True)
    logo_url = PatternField(
        HTTP_URL_PATTERN,
        message="",
        read_only=True,
        allow_blank=True,
        help_text="The tenant's logo (http/https), or ''.",
    )

    class Meta:
        model = Tenant
        fields = [
            "slug",
            "name",
            "plan",
            "domains",
            "allowed_origins",
            "sender_name",
            "sender_email",
            "brand_color",
            "logo_url",
            "widget_strings",
            "is_active",
            "created_at",
        ]
        read_only_fields = fields

    def get_domains(self, tenant: Tenant) -> list[str]:
        return tenant_domains(tenant=tenant)


class OriginField(PatternField):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            ORIGIN_PATTERN,
            message="Use an origin: scheme and host, optional port, no path "
            "(e.g. https://app.example.com).",
            **kwargs,
        )

    def to_internal_value(self, data: Any) -> str:
        return super().to_internal_value(data).lower().rstrip("/")


class TenantUpdateSerializer(StrictSerializer):
    allowed_origins = serializers.ListField(child=OriginField(), max_length=50, required=False)
    sender_name = DisplayNameField(max_length=100, allow_blank=True, required=False)
    sender_email = EmailOrBlankField(required=False)
    brand_color = PatternField(
        BRAND_COLOR_PATTERN, message="Use a colour like #4f46e5.", required=False
    )
    # Logos are shown inside customers' pages and emails: http(s) only, never javascript:.
    logo_url = PatternField(
        HTTP_URL_PATTERN,
        message="Use an http:// or https:// address.",
        max_length=500,
        allow_blank=True,
        required=False,
    )

    widget_strings = WidgetStringsField(required=False)

    def validate_brand_color(self, value: str) -> str:
        return value.lower()

    def validate_allowed_origins(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class LoginSerializer(StrictSerializer):
    email = StrictCharField(max_length=254)
    password = StrictCharField(max_length=1024, trim_whitespace=False)


class RefreshSerializer(StrictSerializer):
    refresh = StrictCharField(max_length=4096)


class ApiKeyCreateSerializer(StrictSerializer):
    name = StrictCharField(max_length=100)


def api_key_payload(api_key: ApiKey) -> dict[str, Any]:
    return {
        "id": api_key.pk,
        "name": api_key.name,
        "prefix": api_key.prefix,
        "created_at": api_key.created_at,
        "last_used_at": api_key.last_used_at,
        "revoked_at": api_key.revoked_at,
    }


class SignupSerializer(StrictSerializer):
    """Types and size bounds only: the rules (slug format and availability, password strength)
    are the provisioning service's, shared with the sign-up page, and so are its messages."""

    slug = StrictCharField(
        max_length=100, allow_blank=True, help_text="Your tenant's host: <slug>.<platform host>."
    )
    name = StrictCharField(max_length=1000, allow_blank=True, help_text="Your organisation.")
    email = StrictCharField(
        max_length=254, allow_blank=True, help_text="The first admin's email (their login)."
    )
    password = StrictCharField(max_length=1024, allow_blank=True, trim_whitespace=False)


def signup_payload(*, slug: str, domain: str, api_key: str) -> dict[str, Any]:
    return {"slug": slug, "domain": domain, "api_key": api_key}
