from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

from herald.fields import StrictCharField, StrictSerializer
from tenants.models import ApiKey, Tenant
from tenants.selectors import tenant_domains

ORIGIN_PATTERN = re.compile(r"^https?://[a-z0-9.-]+(:\d{1,5})?$")


class TenantSerializer(serializers.ModelSerializer):
    plan = serializers.SlugRelatedField(slug_field="code", read_only=True)
    domains = serializers.SerializerMethodField()

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
            "is_active",
            "created_at",
        ]
        read_only_fields = fields

    def get_domains(self, tenant: Tenant) -> list[str]:
        return tenant_domains(tenant=tenant)


class OriginField(StrictCharField):
    def to_internal_value(self, data: Any) -> str:
        origin = super().to_internal_value(data).strip().lower().rstrip("/")
        if not ORIGIN_PATTERN.fullmatch(origin):
            raise serializers.ValidationError(
                "Use an origin: scheme and host, optional port, no path "
                "(e.g. https://app.example.com)."
            )
        return origin


class TenantUpdateSerializer(StrictSerializer):
    allowed_origins = serializers.ListField(child=OriginField(), max_length=50, required=False)
    sender_name = StrictCharField(max_length=100, allow_blank=True, required=False)
    sender_email = serializers.EmailField(allow_blank=True, required=False)

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
