from __future__ import annotations

from django.db.models import QuerySet

from tenants.models import ApiKey, Tenant


def tenant_domains(*, tenant: Tenant) -> list[str]:
    """The tenant's host names, primary first."""
    return list(tenant.domains.order_by("-is_primary", "domain").values_list("domain", flat=True))


def api_key_list(*, tenant: Tenant) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(tenant=tenant)
