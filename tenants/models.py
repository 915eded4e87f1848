"""The tenant registry (public schema): tenants, domains, API keys and spare schemas."""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.validators import RegexValidator
from django.db import models
from django.db.models.functions import Now, Upper
from django_tenants.models import DomainMixin, TenantMixin

SLUG_PATTERN = r"^[a-z][a-z0-9-]{1,39}$"
BRAND_COLOR_PATTERN = r"^#[0-9a-f]{6}$"


class Tenant(TenantMixin):
    """A customer company. Its data lives in the PostgreSQL schema ``schema_name``."""

    slug = models.CharField(max_length=40, unique=True, validators=[RegexValidator(SLUG_PATTERN)])
    name = models.CharField(max_length=200)
    plan = models.ForeignKey("billing_stub.Plan", on_delete=models.PROTECT, related_name="tenants")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    allowed_origins = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    sender_name = models.CharField(max_length=100, blank=True)
    sender_email = models.EmailField(blank=True)
    # Branding used by emails, the widget's default theme and the dashboard.
    brand_color = models.CharField(
        max_length=7, default="#4f46e5", validators=[RegexValidator(BRAND_COLOR_PATTERN)]
    )
    logo_url = models.URLField(max_length=500, blank=True)
    # The widget's UI strings replaced per language or tag: {"de": {"title": "Mitteilungen"}}
    # (validated by widget.locales.widget_overrides).
    widget_strings = models.JSONField(default=dict, blank=True)
    limit_overrides = models.JSONField(
        default=dict,
        blank=True,
        help_text='Per-tenant limits over the plan\'s, e.g. {"monthly_email_quota": 50000}.',
    )

    # Schemas are created by tenants.services.tenant_provision (cloned from the template inside the
    # same transaction as this row), never as a side effect of save().
    auto_create_schema = False
    auto_drop_schema = True

    class Meta:
        ordering = ["slug"]
        indexes = [
            # django-tenants' save() checks a new tenant's schema name case-insensitively
            # (schema_name__iexact): without this index that is a scan of every tenant.
            models.Index(Upper("schema_name"), name="tenant_schema_name_upper"),
        ]

    def __str__(self) -> str:
        return self.slug

    def primary_host(self) -> str:
        """The host the tenant is served on first: links in its emails use it. Every
        provisioned tenant has one (``Domain.DoesNotExist`` otherwise)."""
        return self.domains.get(is_primary=True).domain

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        from billing_stub.limits import override_errors

        errors = override_errors(self.limit_overrides)
        if errors:
            raise ValidationError({"limit_overrides": errors})


class Domain(DomainMixin):
    """A host name that serves one tenant: ``<slug>.<PLATFORM_HOST>`` plus any custom domains."""

    def __str__(self) -> str:
        return self.domain


class ApiKey(models.Model):
    """A secret API key. Only its SHA-256 is stored; the key itself is shown once, at creation."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="The first characters, for display only.")
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=254, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["tenant", "-created_at"], name="apikey_tenant_created")]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class DueWork(models.Model):
    """When a tenant next has periodic work of a kind (scheduled sends, digests, email), so
    periodic tasks visit only the tenants with something due rather than every schema.

    ``due_at`` only ever moves earlier from the outside (``tenants.due.due_fold``, from the
    ``DueHint`` rows the work's own transaction wrote); the periodic task moves it later, holding
    the row, once it has done what was due (``tenants.due.due_recompute``).
    """

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=16)
    due_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "kind"], name="duework_one_per_kind")
        ]
        indexes = [models.Index(fields=["kind", "due_at"], name="duework_due")]

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} at {self.due_at}"


class DueHint(models.Model):
    """Work of a kind due at a time, written in the transaction that created the work
    (``tenants.due.due_hint``) and folded into ``DueWork`` by the periodic tasks: it commits
    with the work or not at all, so no wake-up is lost. Append-only, indexed by its key alone:
    writers never wait for one another, and a fold takes every row. No foreign key: a hint of a
    tenant deleted meanwhile is dropped by the fold."""

    tenant_id = models.BigIntegerField()
    kind = models.CharField(max_length=16)
    due_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.tenant_id} {self.kind} at {self.due_at}"


class SpareSchema(models.Model):
    """A schema built from the template ahead of need, which a sign-up renames into the new
    tenant's schema instead of building one (``tenants.spares``). ``template_state`` is the
    template's migration state it was built from: only a spare of the current state is taken."""

    schema_name = models.CharField(max_length=63, unique=True)
    template_state = models.CharField(max_length=64)
    created_at = models.DateTimeField(db_default=Now())

    class Meta:
        indexes = [models.Index(fields=["template_state", "id"], name="spare_by_state")]

    def __str__(self) -> str:
        return self.schema_name
