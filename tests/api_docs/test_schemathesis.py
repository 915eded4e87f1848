"""The served OpenAPI schema tells the truth: schemathesis fuzzes every operation, live.

The real ``web`` process serves the schema; schemathesis loads it from there and, per operation,
sends the schema's examples, its coverage cases (boundaries, missing and wrong-typed values) and a
bounded number of generated requests, valid and invalid, with each kind of credential the
operation accepts (one test per kind). Every check runs on every response: no server error; a
documented status code, content type, headers and body; valid data accepted, invalid refused;
auth enforced.

An operation that takes both an API key and an admin token gets its coverage cases once, with
the API key: both credentials reach the same view and serializer, so the boundary cases would
only repeat. With the admin token it still gets its examples and generated requests, and every
check. (The coverage cases of such operations were about half of this module's time.)

Everything happens in a throwaway tenant on the ``enterprise`` plan, whose API rate does not 429
the run. Each run gets a credential of its own, so a key the admin run revokes, or a user the API
key run erases, cannot fail another run. Tenants that sign-up creates are deleted afterwards.

Settings (seed, examples per operation, the one allowance for sign-up) live in
``schemathesis.toml`` next to this file, shared with the ``schemathesis run`` command line; the
README's "Tests" section says how to reproduce a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django_tenants.utils import schema_context

from notifications.models import EndUser
from tenants.models import Tenant
from tenants.services import api_key_create
from tenants.tokens import admin_token_pair, end_user_token_issue
from tests.api_docs import schemathesis_hooks  # noqa: F401 -- registers the hooks
from tests.support.personas import committed_tenant, tenant_drop
from tests.support.processes import Server

CONFIG = Path(__file__).with_name("schemathesis.toml")
SLUG = "fuzz"
# Sign-up and its slug check belong to the platform host; everything else runs on the tenant's.
PLATFORM_HOST_OPERATIONS = {"signup", "signup_slug_check"}


def fuzz_config(*, coverage: bool = True) -> schemathesis.Config:
    """``schemathesis.toml``, without the coverage phase when ``coverage`` is false;
    ``HERALD_FUZZ_SEED`` picks another seed, to explore beyond the fixed one (a run with a given
    seed sends the same requests every time)."""
    text = CONFIG.read_text()
    if not coverage:  # as the file would say it (schemathesis merges only what a source names)
        text += "\n[phases.coverage]\nenabled = false\n"
    config = schemathesis.Config.from_str(text)
    if seed := os.environ.get("HERALD_FUZZ_SEED"):
        config.update(seed=int(seed), max_failures=None)
    return config


@dataclass(frozen=True)
class Sandbox:
    server: Server
    tenant: Tenant
    owner_pk: int


@pytest.fixture(scope="module")
def sandbox(web: Server, django_db_blocker: Any) -> Iterator[Sandbox]:
    """A throwaway tenant; it and every tenant signed up meanwhile are deleted afterwards."""
    slugs: list[str] = []
    with django_db_blocker.unblock():
        before = set(Tenant.objects.values_list("slug", flat=True))
        try:
            tenant, _key = committed_tenant(slugs, SLUG, "Fuzz Ltd", plan="enterprise")
            with schema_context(tenant.schema_name):
                owner = get_user_model().objects.get(email=f"owner@{SLUG}.example.com")
            yield Sandbox(server=web, tenant=tenant, owner_pk=owner.pk)
        finally:
            connection.set_schema_to_public()
            created = set(Tenant.objects.values_list("slug", flat=True)) - before
            for doomed in Tenant.objects.filter(slug__in=created | set(slugs)):
                tenant_drop(doomed)


def _credential(kind: str, sandbox: Sandbox, django_db_blocker: Any) -> str | None:
    """A fresh ``Authorization`` value of one kind in the sandbox tenant (None: anonymous)."""
    tenant = sandbox.tenant
    with django_db_blocker.unblock():
        if kind == "api_key":
            token = api_key_create(tenant=tenant, name="fuzz").plaintext
        elif kind == "admin_token":
            token = admin_token_pair(tenant=tenant, user_pk=sandbox.owner_pk)["access"]
        elif kind == "end_user_token":
            with schema_context(tenant.schema_name):
                user, _ = EndUser.objects.get_or_create(external_id="fuzz-end-user")
            token = end_user_token_issue(
                tenant=tenant, end_user_pk=user.pk, external_id=user.external_id
            ).token
        else:
            return None
    return f"Bearer {token}"


def _live_schema(sandbox: Sandbox, config: schemathesis.Config) -> Any:
    """The live schema, as the web process serves it on the platform host."""
    url = f"{sandbox.server.url}/api/schema/?format=json"
    return schemathesis.openapi.from_url(
        url,
        config=config,
        headers={"Host": f"{settings.PLATFORM_HOST}:{sandbox.server.port}"},
        timeout=30,
    )


@pytest.fixture
def herald_schema(sandbox: Sandbox) -> Any:
    return _live_schema(sandbox, fuzz_config())


@pytest.fixture
def herald_schema_without_coverage(sandbox: Sandbox) -> Any:
    """The same, with examples and generated requests only (no coverage phase)."""
    return _live_schema(sandbox, fuzz_config(coverage=False))


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's lazy schemas read and rename ``item._nodeid``, which pytest 9.2 no
    longer has (the id is ``_id``); without one, every such test fails before it starts."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def accepting(scheme: str | None) -> Any:
    """Operations whose security lists ``scheme`` (None: those that take no credential)."""

    def accepts(ctx: Any) -> bool:
        security = ctx.operation.definition.raw.get("security") or []
        schemes = {name for requirement in security for name in requirement}
        return scheme in schemes if scheme else not schemes

    accepts.__name__ = f"accepts_{scheme or 'no_credential'}"
    return accepts


def call_and_validate(case: Any, sandbox: Sandbox, authorization: str | None) -> None:
    """Send the case to the host its operation lives on, with the run's credential, and run
    every check on the response."""
    platform = case.operation.definition.raw.get("operationId") in PLATFORM_HOST_OPERATIONS
    host = settings.PLATFORM_HOST if platform else f"{SLUG}.{settings.PLATFORM_HOST}"
    headers = {"Host": f"{host}:{sandbox.server.port}"}
    if authorization:
        headers["Authorization"] = authorization
    case.call_and_validate(headers=headers, timeout=30)


schema = schemathesis.pytest.from_fixture("herald_schema")
schema_without_coverage = schemathesis.pytest.from_fixture("herald_schema_without_coverage")


@pytest.fixture(scope="module")
def api_key(sandbox: Sandbox, django_db_blocker: Any) -> str | None:
    return _credential("api_key", sandbox, django_db_blocker)


@pytest.fixture(scope="module")
def admin_token(sandbox: Sandbox, django_db_blocker: Any) -> str | None:
    return _credential("admin_token", sandbox, django_db_blocker)


@pytest.fixture(scope="module")
def end_user_token(sandbox: Sandbox, django_db_blocker: Any) -> str | None:
    return _credential("end_user_token", sandbox, django_db_blocker)


@schema.include(accepting("ApiKey")).parametrize()
def test_with_an_api_key(case: Any, sandbox: Sandbox, api_key: str) -> None:
    call_and_validate(case, sandbox, api_key)


@schema.include(accepting("AdminToken")).exclude(accepting("ApiKey")).parametrize()
def test_with_an_admin_token(case: Any, sandbox: Sandbox, admin_token: str) -> None:
    call_and_validate(case, sandbox, admin_token)


@schema_without_coverage.include(accepting("AdminToken")).include(accepting("ApiKey")).parametrize()
def test_with_an_admin_token_where_an_api_key_works_too(
    case: Any, sandbox: Sandbox, admin_token: str
) -> None:
    call_and_validate(case, sandbox, admin_token)


@schema.include(accepting("EndUserToken")).parametrize()
def test_with_an_end_user_token(case: Any, sandbox: Sandbox, end_user_token: str) -> None:
    call_and_validate(case, sandbox, end_user_token)


@schema.include(accepting(None)).parametrize()
def test_without_a_credential(case: Any, sandbox: Sandbox) -> None:
    call_and_validate(case, sandbox, None)
