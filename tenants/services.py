"""Writes on the tenant registry: provisioning tenants and managing their API keys."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_tenants.utils import get_public_schema_name

from billing_stub.selectors import DEFAULT_PLAN_CODE, plan_get
from herald.domain import Invalid
from herald.text import display_name_error
from tenants import registry_cache
from tenants.entry import in_schema
from tenants.keys import display_prefix, generate_key, hash_key
from tenants.models import SLUG_PATTERN, ApiKey, Domain, Tenant
from tenants.spares import schema_create

RESERVED_SLUGS = frozenset(
    {
        "account", "accounts", "admin", "api", "app", "assets", "auth", "billing", "blog", "cdn",
        "dashboard", "dev", "docs", "email", "ftp", "help", "herald", "imap", "internal", "login",
        "mail", "media", "pop", "public", "root", "signup", "smtp", "static", "staging", "status",
        "support", "system", "template", "test", "webhooks", "widget", "ws", "www",
    }
)  # fmt: skip
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


class ProvisioningError(Invalid):
    """Invalid provisioning input. ``errors`` (also the ``details``) maps a field name to its
    messages; ``str()`` lists them all, for the command line."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        super().__init__("The request is invalid; see details.", details=errors)
        self.errors = errors

    def __str__(self) -> str:
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in self.errors.items())


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    domain: str
    api_key: str  # the plaintext key: shown once, never stored


@dataclass(frozen=True)
class SignedUp:
    """A self-served tenant: what the sign-up result page shows, and whom to sign in."""

    tenant: Tenant
    domain: str
    api_key: str  # the plaintext key: shown once, never stored
    admin_id: int  # the admin's user id in the tenant's schema


@dataclass(frozen=True)
class SlugCheck:
    slug: str  # normalised (trimmed, lowercase)
    errors: list[str]  # empty when the slug is available
    suggestion: str | None  # a free variant when it is taken or reserved


@dataclass(frozen=True)
class CreatedApiKey:
    api_key: ApiKey
    plaintext: str  # shown once, never stored


def schema_name_for_slug(slug: str) -> str:
    """``acme-eu`` -> ``t_acme_eu``. Injective: slugs never contain ``_``."""
    return "t_" + slug.replace("-", "_")


def slug_errors(slug: str) -> list[str]:
    """Why a slug cannot be used (format, reserved word, taken); empty when it is available."""
    if not re.fullmatch(SLUG_PATTERN, slug or ""):
        return [
            "Use 2 to 40 characters: lowercase letters, digits and hyphens, starting with a letter."
        ]
    if slug in RESERVED_SLUGS:
        return [f"'{slug}' is reserved."]
    if Tenant.objects.filter(slug=slug).exists():
        return [f"'{slug}' is already taken."]
    return []


def slug_normalize(slug: str) -> str:
    return (slug or "").strip().lower()


def slug_check(slug: str) -> SlugCheck:
    """Whether a slug can be signed up with and, when it is taken or reserved, a free variant
    (``acme`` -> ``acme-2``). At most two queries."""
    slug = slug_normalize(slug)
    errors = slug_errors(slug)
    suggestion = None
    if errors and re.fullmatch(SLUG_PATTERN, slug):
        stem = slug[:37].rstrip("-")
        candidates = [f"{stem}-{n}" for n in range(2, 10)]
        taken = set(Tenant.objects.filter(slug__in=candidates).values_list("slug", flat=True))
        suggestion = next((c for c in candidates if c not in taken), None)
    return SlugCheck(slug=slug, errors=errors, suggestion=suggestion)


def signup_errors(*, slug: str, name: str, email: str, password: str) -> dict[str, list[str]]:
    """Every problem with a self-serve sign-up's fields, by field name (``slug``, ``name``,
    ``email``, ``password``); empty when ``tenant_signup`` would go ahead. The same rules as
    provisioning, on the ``free`` plan."""
    return _validate_provisioning(
        slug=slug_normalize(slug),
        name=name,
        admin_email=(email or "").strip(),
        admin_password=password,
        plan_code=DEFAULT_PLAN_CODE,
    )


def tenant_signup(*, slug: str, name: str, email: str, password: str) -> SignedUp:
    """Provision a self-served tenant on the ``free`` plan, whole or not at all (see
    ``tenant_provision``). Raises ProvisioningError with the fields' problems, including a slug
    taken by a concurrent sign-up. Runs in the public schema, whichever the caller was in (a
    request on the platform host with a tenant's credential is in that tenant's)."""
    email = (email or "").strip()
    with in_schema(get_public_schema_name()):
        result = tenant_provision(
            slug=slug, name=name, admin_email=email, admin_password=password,
            plan_code=DEFAULT_PLAN_CODE,
        )  # fmt: skip
    with in_schema(result.tenant.schema_name):
        admin_id = get_user_model().objects.get(email=email.lower()).pk
    return SignedUp(
        tenant=result.tenant, domain=result.domain, api_key=result.api_key, admin_id=admin_id
    )


def _validate_provisioning(
    *, slug: str, name: str, admin_email: str, admin_password: str | None, plan_code: str
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if problems := slug_errors(slug):
        errors["slug"] = problems
    if not name or not name.strip():
        errors["name"] = ["A name is required."]
    elif len(name) > 200:
        errors["name"] = ["Use at most 200 characters."]
    elif error := display_name_error(name.strip()):  # it becomes the sender name of every email
        errors["name"] = [error]
    try:
        validate_email(admin_email)
    except ValidationError:
        errors["email"] = ["Enter a valid email address."]
    if admin_password is not None:  # None: no password (bulk provisioning's admins)
        try:
            validate_password(admin_password, user=get_user_model()(email=admin_email))
        except ValidationError as exc:
            errors["password"] = list(exc.messages)
    if plan_get(code=plan_code) is None:
        errors["plan"] = [f"Unknown plan '{plan_code}'."]
    return errors


def tenant_provision(
    *,
    slug: str,
    name: str,
    admin_email: str,
    admin_password: str,
    plan_code: str = DEFAULT_PLAN_CODE,
) -> ProvisionedTenant:
    """Create a tenant whole, or nothing at all.

    In one transaction: the tenant row, its schema (a spare renamed, or the template's DDL
    replayed), its first admin, its ``<slug>.<PLATFORM_HOST>`` domain and its first API key. Any
    failure rolls all of it back, schema included (PostgreSQL DDL is transactional), and a spare
    taken goes back to the pool. Call in the public schema.
    Raises ProvisioningError for bad input, TemplateOutOfDate when ``migrate`` has not run.
    """
    slug = (slug or "").strip().lower()
    errors = _validate_provisioning(
        slug=slug,
        name=name,
        admin_email=admin_email,
        admin_password=admin_password,
        plan_code=plan_code,
    )
    if errors:
        raise ProvisioningError(errors)

    try:
        with transaction.atomic():
            result = _provision_one(
                slug=slug, name=name, plan_code=plan_code, admin_email=admin_email,
                admin_password=admin_password,
            )  # fmt: skip
    except IntegrityError as exc:
        # A concurrent provisioning won the race for the slug (or its domain).
        raise ProvisioningError({"slug": [f"'{slug}' is already taken."]}) from exc
    return result


def _provision_one(
    *, slug: str, name: str, plan_code: str, admin_email: str, admin_password: str | None,
    admin_password_hash: str = "", use_spare: bool = True,
) -> ProvisionedTenant:  # fmt: skip
    """The writes of one valid tenant; call inside ``transaction.atomic`` in the public schema.
    The schema is a spare renamed when one is free and ``use_spare`` (``tenants.spares``)."""
    domain_name = f"{slug}.{settings.PLATFORM_HOST}"
    tenant = Tenant(
        slug=slug,
        name=name.strip(),
        plan=plan_get(code=plan_code),
        schema_name=schema_name_for_slug(slug),
        sender_name=name.strip(),
    )
    tenant.save()  # type: ignore[no-untyped-call]  # TenantMixin.save is unannotated
    schema_create(tenant.schema_name, use_spare=use_spare)
    with in_schema(tenant.schema_name):
        admin = get_user_model().objects.create_user(admin_email, admin_password)
        if admin_password_hash:
            admin.password = admin_password_hash
            admin.save(update_fields=["password"])
    Domain.objects.create(domain=domain_name, tenant=tenant, is_primary=True)
    created = api_key_create(tenant=tenant, name="Default key", created_by=admin_email)
    return ProvisionedTenant(tenant=tenant, domain=domain_name, api_key=created.plaintext)


def api_key_create(*, tenant: Tenant, name: str, created_by: str = "") -> CreatedApiKey:
    plaintext = generate_key()
    api_key = ApiKey.objects.create(
        tenant=tenant,
        name=name,
        prefix=display_prefix(plaintext),
        key_hash=hash_key(plaintext),
        created_by=created_by,
    )
    return CreatedApiKey(api_key=api_key, plaintext=plaintext)


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


_TOUCH_NOT_DURABLE = (  # set_config(..., true) lasts for this statement's own transaction
    "UPDATE tenants_apikey SET last_used_at = %s"
    " FROM (SELECT set_config('synchronous_commit', 'off', true)) AS relaxed WHERE id = %s"
)


def api_key_mark_used(*, api_key: ApiKey, recorded: bool = False) -> None:
    """Record the key's use, at most once per ``API_KEY_TOUCH_INTERVAL`` across every process.

    ``recorded`` says the registry cache already knows of a use within the interval (it comes
    with the key's entry at no extra cost). Otherwise one caller claims the interval in Redis and
    writes the time. The write does not wait for the WAL flush: a last-use time lost in a crash
    is harmless, and waiting for the disk was most of the cost of the first request to a key in
    a minute (which, with requests spread over many tenants, is most requests). The key's cached
    entry is kept: its ``last_used_at`` may lag by up to the registry's TTL, and nothing reads it
    there.
    """
    now = timezone.now()
    if recorded or (api_key.last_used_at and now - api_key.last_used_at < API_KEY_TOUCH_INTERVAL):
        return
    entry = registry_cache.used_entry(api_key.key_hash)
    if not registry_cache.claim(entry, ttl=int(API_KEY_TOUCH_INTERVAL.total_seconds())):
        return
    connection = transaction.get_connection()
    if connection.in_atomic_block:  # relaxing the commit here would relax the caller's too
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
    else:  # one autocommitted statement that does not wait for the WAL flush
        with connection.cursor() as cursor:
            cursor.execute(_TOUCH_NOT_DURABLE, [now, api_key.pk])
    api_key.last_used_at = now


def tenant_update(*, tenant: Tenant, fields: dict[str, object]) -> Tenant:
    """Change the tenant's widget origins, email sender, branding and widget strings (validated
    by the caller)."""
    allowed = {
        "allowed_origins",
        "sender_name",
        "sender_email",
        "brand_color",
        "logo_url",
        "widget_strings",
    }
    changes = {name: value for name, value in fields.items() if name in allowed}
    for name, value in changes.items():
        setattr(tenant, name, value)
    if changes:
        tenant.save(update_fields=list(changes))  # type: ignore[no-untyped-call]  # as above
    return tenant
