from __future__ import annotations

from rest_framework import serializers

from tenants.models import Tenant
from tenants.selectors import tenant_domains


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
