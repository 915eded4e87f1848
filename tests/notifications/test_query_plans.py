"""The inbox queries the API runs are answered by their indexes, in order, without a sort.

On a small test table PostgreSQL would rather scan it whole, so sequential scans are switched off
to ask: *can* this exact query use the index? (bench/send_and_inbox.py shows the plans at 1M rows.)
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications import catchup, selectors
from notifications.models import Delivery, EndUser, NotificationType, Send
from notifications.services.deliveries import _claim, deliveries_pending
from notifications.services.users import recipients_lookup_params, recipients_lookup_sql
from tests.support.personas import start_empty


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
            assert "Index Scan using enduser_external_id_unique" in plan, plan


def test_one_external_id_index_serves_lookups_prefix_searches_and_uniqueness(db, world):
    """An end user's external id has one index (``enduser_external_id_unique``): equality,
    a prefix search (the dashboard's suggestions) and uniqueness all use it, in any collation."""
    with schema_context(world.tenant_a.schema_name):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
                " AND tablename = %s ORDER BY indexname",
                [EndUser._meta.db_table],
            )
            indexes = [row[0] for row in cursor.fetchall()]
        assert indexes == ["enduser_external_id_unique", "notifications_enduser_pkey"]
        lookup = plan_of(EndUser.objects.filter(external_id="user-1"))
        prefix = plan_of(EndUser.objects.filter(external_id__startswith="user-"))
        assert "enduser_external_id_unique" in lookup, lookup
        assert "enduser_external_id_unique" in prefix, prefix
        with transaction.atomic(), pytest.raises(IntegrityError):
            EndUser.objects.create(external_id="user-1")


def _delivery_rows_read(plan: dict) -> int:
    """The most rows any node of ``plan`` (EXPLAIN ANALYZE, JSON) read from the delivery table:
    those it returned plus those its filter removed."""
    most = 0
    if plan.get("Relation Name") == Delivery._meta.db_table:
        most = plan.get("Actual Rows", 0) + plan.get("Rows Removed by Filter", 0)
    for child in plan.get("Plans", ()):
        most = max(most, _delivery_rows_read(child))
    return most


def test_claims_and_the_pending_check_read_no_row_held_for_later(db, world):
    """A delayed channel keeps its rows queued until their time. However many are held, a claim
    of the due rows (and its read check) and the check for pending work read the due rows
    alone: index ``delivery_queued_due`` holds when each row comes due."""
    now = timezone.now()
    held = 3000
    with schema_context(world.tenant_a.schema_name), connection.cursor() as cursor:
        start_empty(Delivery)  # and the users it reaches are its own (RETURNING)
        kind = NotificationType.objects.create(key="plan.held", name="Held", channels=["email"])
        send = Send.objects.create(type=kind, message="m", channels=["email"])
        cursor.execute(
            f"WITH users AS (INSERT INTO {EndUser._meta.db_table} (external_id, email, name,"
            "                 locale, timezone, data, created_at, updated_at)"
            "   SELECT 'held-' || n, 'h' || n || '@example.com', '', '', '', '{}', now(), now()"
            "   FROM generate_series(1, %(users)s) AS n RETURNING id)"
            f" INSERT INTO {Delivery._meta.db_table} (send_id, recipient_id, channel, status,"
            " attempts, last_error, deliver_at, only_if_unread, locked_until, created_at,"
            " updated_at)"
            " SELECT %(send)s, u.id, 'email', 'queued', 0, '', %(at)s, n <= %(held)s,"
            "        CASE WHEN n <= %(held)s THEN %(at)s END, %(now)s, %(now)s"
            " FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM users) AS u",
            {
                "users": held + 5,
                "send": send.pk,
                "at": now + timedelta(minutes=15),
                "held": held,
                "now": now,
            },
        )
        cursor.execute(f"ANALYZE {Delivery._meta.db_table}")
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            pending = deliveries_pending(now=now)
            claimed = _claim("email", now, 100)
            transaction.set_rollback(True)
        assert pending.ready
        assert len(claimed) == 5
        plans = []
        for query in queries.captured_queries:
            if Delivery._meta.db_table not in query["sql"]:
                continue
            with transaction.atomic():
                cursor.execute("SET LOCAL enable_seqscan = off")  # a small table: see the top
                cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {query['sql']}")
                plans.append(cursor.fetchone()[0][0]["Plan"])
                transaction.set_rollback(True)
    assert len(plans) >= 3  # the pending check, the claim's read check, the claim
    read = [_delivery_rows_read(plan) for plan in plans]
    assert max(read) <= 10, f"rows read from deliveries, query by query: {read}"
