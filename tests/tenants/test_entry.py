"""The tenant entries (``tenants.entry``) and the token and origin checks HTTP and the WebSocket
share: each enters the right schema, tags what happens inside with the tenant, and always
resets; each check decides the same way for both callers."""

from __future__ import annotations

import pytest
from django.core.management.base import CommandError
from django.db import connection

from herald import logs
from tenants.entry import in_schema, run_in_schema, tenant_for_command, tenant_for_task
from tenants.models import Tenant
from tenants.origins import origin_allowed
from tenants.resolution import Credential
from tenants.tokens import ADMIN, END_USER, KIND_CLAIM, TokenRejected, end_user_id
from tests.support.aio import run_loop

pytestmark = pytest.mark.django_db


def test_a_task_enters_its_active_tenant_and_always_leaves_it(world):
    tenant = world.tenant_a
    with tenant_for_task(tenant.pk) as entered:
        assert entered.pk == tenant.pk
        assert connection.schema_name == tenant.schema_name
        assert logs.current()["tenant"] == tenant.slug
    assert connection.schema_name == "public"
    assert "tenant" not in logs.current()

    with pytest.raises(RuntimeError), tenant_for_task(tenant.pk):
        raise RuntimeError("the task failed")
    assert connection.schema_name == "public"


def test_a_task_for_a_gone_or_deactivated_tenant_enters_nothing(world):
    with tenant_for_task(10**9) as entered:
        assert entered is None
        assert connection.schema_name == "public"
    Tenant.objects.filter(pk=world.tenant_b.pk).update(is_active=False)  # rolled back after
    with tenant_for_task(world.tenant_b.pk) as entered:
        assert entered is None


def test_a_command_names_its_tenant_by_slug_or_schema(world):
    tenant = world.tenant_a
    for name in (tenant.slug, tenant.schema_name):
        with tenant_for_command(name) as entered:
            assert entered.pk == tenant.pk
            assert connection.schema_name == tenant.schema_name
            assert logs.current()["tenant"] == tenant.slug
        assert connection.schema_name == "public"
    with pytest.raises(CommandError, match="nobody"), tenant_for_command("nobody"):
        pass


def test_nested_work_restores_the_schema_it_found(world):
    with tenant_for_task(world.tenant_a.pk):
        with in_schema(world.tenant_b.schema_name):
            assert connection.schema_name == world.tenant_b.schema_name
        assert connection.schema_name == world.tenant_a.schema_name


def test_websocket_work_runs_in_the_schema_and_leaves_public_behind(world):
    schema = world.tenant_a.schema_name

    async def scenario() -> tuple[str, str]:
        inside = await run_in_schema(schema, lambda: connection.schema_name)
        after = await run_in_schema(None, lambda: connection.schema_name)
        return inside, after

    assert run_loop(scenario()) == (schema, "public")


def jwt(tenant: Tenant, **claims: object) -> Credential:
    return Credential(kind="jwt", tenant=tenant, claims=claims)


def test_one_check_says_which_end_user_a_credential_is_for(world):
    tenant = world.tenant_a
    assert end_user_id(jwt(tenant, **{KIND_CLAIM: END_USER, "sub": "12"})) == 12
    assert end_user_id(jwt(tenant, **{KIND_CLAIM: ADMIN, "sub": "12"})) is None
    assert end_user_id(None) is None
    assert end_user_id(Credential(kind="api_key", tenant=tenant)) is None
    with pytest.raises(TokenRejected):
        end_user_id(jwt(tenant, **{KIND_CLAIM: END_USER, "sub": "twelve"}))


def test_one_check_says_which_origins_may_call_a_tenant():
    tenant = Tenant(allowed_origins=["https://shop.example", "http://localhost:3000"])
    assert origin_allowed("https://shop.example", tenant)
    assert origin_allowed("HTTPS://Shop.Example/", tenant)
    assert not origin_allowed("https://evil.example", tenant)
    assert not origin_allowed("http://localhost:3001", tenant)  # another port: another origin
    assert not origin_allowed("", tenant)
    # Given the request's host, a page on that very host is allowed too, default ports or not.
    host = "acme.herald.example"
    assert origin_allowed("https://acme.herald.example", tenant, host=host)
    assert origin_allowed("https://acme.herald.example:443", tenant, host=host)
    assert origin_allowed("http://demo.localhost:8000", tenant, host="demo.localhost:8000")
    assert not origin_allowed("http://demo.localhost:8001", tenant, host="demo.localhost:8000")
    assert not origin_allowed("https://acme.herald.example", tenant)
