from django.contrib import admin

from tenants.models import ApiKey, Domain, Tenant


class DomainInline(admin.TabularInline[Domain, Tenant]):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin[Tenant]):
    list_display = ["slug", "name", "plan", "is_active", "created_at"]
    list_filter = ["plan", "is_active"]
    search_fields = ["slug", "name"]
    readonly_fields = ["schema_name", "slug", "created_at"]
    inlines = [DomainInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin[ApiKey]):
    list_display = ["prefix", "name", "tenant", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["tenant"]
    readonly_fields = ["prefix", "key_hash", "created_at", "last_used_at"]
