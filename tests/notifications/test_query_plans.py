"""The inbox queries the API runs are answered by their indexes, in order, without a sort.

On a small test table PostgreSQL would rather scan it whole, so sequential scans are switched off
to ask: *can* this exact query use the index? (bench/send_and_inbox.py shows the plans at 1M rows.)
"""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import schema_context

from notifications import selectors
from notifications.models import EndUser


def plan_of(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        return "\n".join(row[0] for row in cursor.fetchall())


def page_plan(user: EndUser, status: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(
            f"EXPLAIN {selectors.inbox_page_sql(status)}",
            {"user": user.pk, "before": 10**9, "limit": 21},
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def test_inbox_pages_use_the_inbox_indexes_without_sorting(db, world):
    with schema_context(world.tenant_a.schema_name):
        user = EndUser.objects.get(external_id="user-1")
        all_plan = page_plan(user, "all")
        unread_plan = page_plan(user, "unread")
        count_plan = plan_of(
            selectors.inbox(user=user, status="unread").values("id")  # what count() scans
        )
    assert "notif_inbox" in all_plan
    assert "notif_inbox_unread" in unread_plan
    assert "notif_inbox_unread" in count_plan
    for plan in (all_plan, unread_plan):
        assert "Sort" not in plan, plan
