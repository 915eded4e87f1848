"""tenants_report: one row per tenant with size, row estimates and last activity; sortable."""

from __future__ import annotations

import csv
import json
from io import StringIO

from django.core.management import call_command
from django.db import connection

from tenants.services import tenant_provision
from tests.support.api import Caller

PASSWORD = "pass-phrase-123!"
SLUGS = ["rep-busy", "rep-idle", "rep-new"]


def report(*args: str) -> str:
    out = StringIO()
    call_command("tenants_report", *args, stdout=out)
    return out.getvalue()


def test_report_shapes_and_figures(committed):
    committed.extend(SLUGS)
    provisioned = {
        slug: tenant_provision(
            slug=slug, name=slug, admin_email=f"a@{slug}.example.com", admin_password=PASSWORD
        )
        for slug in SLUGS
    }
    busy = provisioned["rep-busy"]
    response = Caller(host=busy.domain, token=busy.api_key).post(
        "/api/v1/notifications",
        {"type": "ev", "recipients": ["u-1", "u-2", "u-3"], "message": "hello"},
    )
    assert response.status_code == 202, response.content
    with connection.cursor() as cursor:  # make this backend's row counts visible now
        cursor.execute("SELECT pg_stat_force_next_flush()")
    connection.set_schema_to_public()

    rows = {row["slug"]: row for row in json.loads(report("--format", "json"))}
    assert set(SLUGS) <= set(rows)
    assert set(rows["rep-busy"]) == {
        "slug", "schema", "plan", "active", "size_bytes", "rows_estimate",
        "notifications_estimate", "users_estimate", "last_send_at", "last_api_key_use_at",
        "last_activity_at",
    }  # fmt: skip
    assert rows["rep-busy"]["schema"] == "t_rep_busy"
    assert rows["rep-busy"]["plan"] == "free"
    assert rows["rep-busy"]["notifications_estimate"] == 3
    assert rows["rep-busy"]["users_estimate"] == 3
    assert rows["rep-busy"]["last_send_at"] is not None
    assert rows["rep-busy"]["last_api_key_use_at"] is not None
    assert rows["rep-busy"]["last_activity_at"] == max(
        rows["rep-busy"]["last_send_at"], rows["rep-busy"]["last_api_key_use_at"]
    )
    for slug in ("rep-idle", "rep-new"):
        assert rows[slug]["notifications_estimate"] == 0
        assert rows[slug]["last_activity_at"] is None
    for slug in SLUGS:
        assert rows[slug]["size_bytes"] > 100_000  # a cloned schema's tables and indexes
        assert rows[slug]["rows_estimate"] > 0  # content types and permissions at least

    by_activity = [r["slug"] for r in json.loads(report("--format", "json", "--sort", "activity"))]
    assert by_activity.index("rep-busy") < by_activity.index("rep-idle")
    by_size = json.loads(report("--format", "json", "--sort", "size"))
    sizes = [r["size_bytes"] for r in by_size]
    assert sizes == sorted(sizes, reverse=True)
    assert len(json.loads(report("--format", "json", "--limit", "2"))) == 2

    parsed = list(csv.DictReader(StringIO(report("--format", "csv", "--sort", "slug"))))
    assert [r["slug"] for r in parsed] == sorted(r["slug"] for r in parsed)
    assert {r["slug"]: r["notifications_estimate"] for r in parsed}["rep-busy"] == "3"

    table = report("--sort", "slug").splitlines()
    assert table[0].split()[:4] == ["slug", "schema", "plan", "size"]
    assert any(line.startswith("rep-idle ") and "never" in line for line in table)
    assert table[-1].startswith(f"{len(parsed)} tenants, ")


def test_report_query_count_does_not_grow_per_tenant(committed, django_assert_max_num_queries):
    committed.extend(["rep-q1", "rep-q2"])
    for slug in ("rep-q1", "rep-q2"):
        tenant_provision(
            slug=slug, name=slug, admin_email=f"a@{slug}.example.com", admin_password=PASSWORD
        )
    # Tenants, catalog, one batch of last sends, API keys.
    with django_assert_max_num_queries(4):
        report("--format", "json")
