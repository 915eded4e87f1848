"""The shared world of the test suite: two tenants and the people in them.

- alice: tenant A's admin (dashboard login, admin token) and tenant A's secret API key
- erin: tenant A's end user (external id ``user-1``), who receives notifications
- bob: tenant B's admin and tenant B's API key; tenant B also has an end user ``user-1``,
  so isolation tests can use equal ids on both sides

Created once per test session through the real provisioning service, and committed; each test
then runs in a transaction that is rolled back. Tests that go through the real processes commit
what they write, so the world's tables hold whatever earlier tests left: a test that counts from
an empty table says so with ``start_empty``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.db import OperationalError
from django.db.models import Model
from django_tenants.utils import schema_context

from notifications.models import EndUser
from tenants.models import Tenant
from tenants.services import tenant_provision
from tests.support.api import Caller

PASSWORD = "a-long-test-passphrase-42"


@dataclass(frozen=True)
class Admin:
    tenant: Tenant
    email: str
    password: str
    api_key: str

    @property
    def host(self) -> str:
        return f"{self.tenant.slug}.{settings.PLATFORM_HOST}"


@dataclass(frozen=True)
class EndUserPersona:
    tenant: Tenant
    external_id: str

    @property
    def host(self) -> str:
        return f"{self.tenant.slug}.{settings.PLATFORM_HOST}"


@dataclass(frozen=True)
class World:
    tenant_a: Tenant
    tenant_b: Tenant
    alice: Admin  # tenant A's admin
    erin: EndUserPersona  # tenant A's end user
    bob: Admin  # tenant B's admin


def _provision(slug: str, name: str, admin_email: str, plan: str) -> Admin:
    result = tenant_provision(
        slug=slug, name=name, admin_email=admin_email, admin_password=PASSWORD, plan_code=plan
    )
    return Admin(tenant=result.tenant, email=admin_email, password=PASSWORD, api_key=result.api_key)


def build_world() -> World:
    alice = _provision("alpha", "Alpha Corp", "alice@alpha.example.com", plan="pro")
    bob = _provision("bravo", "Bravo Ltd", "bob@bravo.example.com", plan="free")
    for admin, email in ((alice, "erin@alpha.example.com"), (bob, "user1@bravo.example.com")):
        with schema_context(admin.tenant.schema_name):
            EndUser.objects.create(external_id="user-1", email=email, name="User One")
    return World(
        tenant_a=alice.tenant,
        tenant_b=bob.tenant,
        alice=alice,
        erin=EndUserPersona(tenant=alice.tenant, external_id="user-1"),
        bob=bob,
    )


def committed_tenant(
    committed: list[str], slug: str, name: str, *, plan: str = "pro"
) -> tuple[Tenant, Caller]:
    """A tenant whose writes other processes see, with its API key. ``committed`` is the fixture's
    list: the tenant and its schema are deleted after the test. Its admin is
    ``owner@<slug>.example.com`` with the password ``PASSWORD``."""
    committed.append(slug)
    result = tenant_provision(
        slug=slug, name=name, admin_email=f"owner@{slug}.example.com",
        admin_password=PASSWORD, plan_code=plan,
    )  # fmt: skip
    # The test settings hash with MD5 for speed, which the real web process does not accept:
    # store a PBKDF2 hash (few iterations; the server upgrades it on the first login).
    hasher = PBKDF2PasswordHasher()
    with schema_context(result.tenant.schema_name):
        get_user_model().objects.filter(email=f"owner@{slug}.example.com").update(
            password=hasher.encode(PASSWORD, hasher.salt(), iterations=1000)
        )
    return result.tenant, Caller(host=f"{slug}.localhost", token=result.api_key)


def tenant_drop(tenant: Tenant, *, deadline: float = 30.0) -> None:
    """Delete a committed test tenant and drop its schema, retrying when PostgreSQL picks the
    drop as a deadlock's victim. A test's browser page or worker may still be writing in the
    schema when teardown starts (a page's last fetch, a widget's preview): ``DROP SCHEMA``
    takes its locks table by table, so such a write can hold one table the drop needs while
    waiting for another the drop holds. When PostgreSQL aborts the drop, the write finishes and
    the drop, tried again, goes through (when it aborts the write, the test is over anyway)."""
    stop = time.monotonic() + deadline
    while True:
        try:
            tenant.delete(force_drop=True)
            return
        except OperationalError as error:
            if getattr(error.__cause__, "sqlstate", None) != "40P01" or time.monotonic() > stop:
                raise
            time.sleep(0.05)


def start_empty(*models: type[Model]) -> None:
    """Delete every row of ``models`` (in the current schema) within the test's transaction, so
    the test counts from empty tables whichever tests ran before it; the rollback at its end
    brings the rows back."""
    for model in models:
        model.objects.all().delete()
