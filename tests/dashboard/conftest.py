"""Dashboard tests: a real web process and headless Chromium, on tenants of their own.

Browser tests create committed tenants (deleted afterwards) so that what they write through the
dashboard never leaks into the rolled-back world of other tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tenants.models import Tenant
from tests.support.api import Caller
from tests.support.personas import PASSWORD, committed_tenant
from tests.support.processes import Server


@dataclass(frozen=True)
class Site:
    """A committed tenant as its admin sees it in the browser."""

    tenant: Tenant
    api: Caller  # its secret API key, in-process
    server: Server
    email: str
    password: str

    def url(self, path: str = "/dashboard/") -> str:
        return f"http://{self.tenant.slug}.localhost:{self.server.port}{path}"


@pytest.fixture
def make_site(committed: list[str], web: Server) -> Callable[..., Site]:
    def make(slug: str, name: str = "Site Corp", plan: str = "pro") -> Site:
        tenant, api = committed_tenant(committed, slug, name, plan=plan)
        return Site(tenant, api, web, f"owner@{slug}.example.com", PASSWORD)

    return make


def log_in(page: Any, site: Site, *, email: str | None = None, password: str | None = None) -> None:
    """Sign in through the login form as the site's admin (or the given credentials), from the
    login page the browser is on (keeping its ``next``) or a fresh one."""
    if "/dashboard/login" not in page.url or site.tenant.slug not in page.url:
        page.goto(site.url("/dashboard/login"))
    page.get_by_label("Email").fill(email or site.email)
    page.get_by_label("Password").fill(password or site.password)
    page.get_by_role("button", name="Sign in").click()
