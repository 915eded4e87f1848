"""The inbox queries the API runs are answered by their indexes, in order, without a sort.

On a small test table PostgreSQL would rather scan it whole, so sequential scans are switched off
to ask: *can* this exact query use the index? (bench/send_and_inbox.py shows the plans at 1M rows.)
"""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import schema_context

from notifications import catchup, selectors
from notifications.models import EndUser
from notifications.services.users import recipients_lookup_params, recipients_lookup_sql


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


def test_the_catch_up_after_a_gap_reads_index_ranges_per_user(db, world):
    """However long a user's inbox, the catch-up reads the newest rows of the inbox index (and
    counts on the unread one), never the whole table or the whole inbox."""
    with schema_context(world.tenant_a.schema_name):
        user = EndUser.objects.get(external_id="user-1")
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(
                f"EXPLAIN {catchup.inbox_state_sql()}",
                {"users": [user.pk, user.pk + 1], "cutoff": "2026-01-01T00:00:00Z", "scan": 2000},
            )
            plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Scan using notif_inbox on" in plan, plan  # newest first, then the Limit
    assert "Limit" in plan, plan
    assert "notif_inbox_unread" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan


def test_a_sends_recipient_lookup_probes_the_index_whatever_the_table_holds(db, world):
    """A send looks each recipient up by the external id's index: never a hash of the whole
    users table, which the planner prefers for a large send (and which grows with the tenant,
    not with the send). Here with statistics, as in a live tenant, and no planner switches."""
    with schema_context(world.tenant_a.schema_name), connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {EndUser._meta.db_table} (external_id, email, name, locale,"
            " timezone, data, created_at, updated_at)"
            " SELECT 'plan-' || n, '', '', '', '', '{}', now(), now()"
            " FROM generate_series(1, 20000) AS n"
        )
        cursor.execute(f"ANALYZE {EndUser._meta.db_table}")
        for lock in (True, False):
            cursor.execute(
                f"EXPLAIN {recipients_lookup_sql(lock=lock)}",
                recipients_lookup_params([f"plan-{n}" for n in range(1, 10001)]),
            )
            # The plan's nodes, without the conditions (which quote the 10,000 ids).
            plan = "\n".join(
                row[0].split("  (cost")[0]
                for row in cursor.fetchall()
                if "Cond:" not in row[0] and "Filter:" not in row[0]
            )
            assert "Hash" not in plan, plan
            assert "Seq Scan" not in plan, plan
            assert "Index Scan using notifications_enduser_external_id" in plan, plan
