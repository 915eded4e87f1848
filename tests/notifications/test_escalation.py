"""Delayed channels and escalation end to end: "notify in-app now; email only if it is still
unread after a while". A real Celery worker and beat (its sweep wakes the tenant when a delayed
row comes due, through the due-work index), a real SMTP server (aiosmtpd) and push service, and
end users reading through their own API."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_tenants.utils import schema_context, tenant_context

from billing_stub.metering import EMAILS, usage_get
from notifications.models import Delivery, DigestBatch, Notification, WebhookDelivery
from notifications.services.deliveries import deliveries_deliver
from notifications.services.webhook_endpoints import webhook_endpoint_create
from tests.notifications.email_support import (
    FAST_RETRIES,
    QUEUE,
    close_now,
    deliveries,
    send,
    settled,
    unique,
)
from tests.support.api import Caller, error_code
from tests.support.processes import running_beat, running_worker, wait_until
from tests.support.push_service import Browser, push_service
from tests.support.smtp import smtp_sink

# The sweep wakes tenants whose delayed rows came due; shortened so a test waits little.
SWEEP = {"EMAIL_SWEEP_SECONDS": "0.2"}
WORKER = {**SWEEP, **FAST_RETRIES}


@contextmanager
def releasing(**env: str) -> Iterator[None]:
    """A worker, and beat, whose sweep wakes the tenant when a delayed row comes due."""
    with running_beat(**SWEEP), running_worker(QUEUE, **WORKER, **env):
        yield


def ruled_type(api: Caller, rules: dict, **fields) -> str:
    key = unique("esc")
    body = {"name": "Replies", "channels": ["in_app", "email"], "channel_rules": rules, **fields}
    response = api.put(f"/api/v1/types/{key}", body)
    assert response.status_code == 201, response.content
    return key


def end_user(server: Caller, external_id: str) -> Caller:
    response = server.post(f"/api/v1/users/{external_id}/token")
    assert response.status_code == 200, response.content
    return Caller(host=server.host, token=response.json()["token"])


def recipient() -> tuple[str, str]:
    return unique("user"), f"{unique('to')}@example.com"


def when(text: str | None) -> datetime:
    parsed = parse_datetime(text or "")
    assert parsed is not None, text
    return parsed


def the_row(api: Caller, send_id: int, channel: str = "email") -> dict:
    [row] = [r for r in deliveries(api, send_id) if r["channel"] == channel]
    return row


def emails_used(world) -> int:
    return usage_get(tenant_id=world.tenant_a.pk, kind=EMAILS)


def test_a_notification_read_within_the_delay_skips_its_email(alpha, world):
    key = ruled_type(alpha, {"email": {"delay_seconds": 2, "only_if_unread": True}})
    external_id, address = recipient()
    used = emails_used(world)
    with (
        smtp_sink() as sink,
        running_beat(**SWEEP),
        running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER),
    ):
        send_id = send(alpha, key, [{"id": external_id, "email": address}])
        row = the_row(alpha, send_id)
        assert row["status"] == "queued"
        assert when(row["deliver_at"]) > when(row["created_at"])
        read = end_user(alpha, external_id).patch(
            f"/api/v1/me/notifications/{row['notification']}", {"is_read": True}
        )
        assert read.status_code == 200, read.content
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="settled")
        # settled is final: a skipped row is never claimed, so no email can follow it

    assert row["status"] == "skipped_read"
    assert row["sent_at"] is None
    assert sink.to(address) == []
    assert emails_used(world) == used  # a skipped email costs no email quota
    summary = alpha.get(f"/api/v1/sends/{send_id}").json()["channels"]
    assert summary == {"in_app": {"sent": 1}, "email": {"skipped_read": 1}}
    listed = alpha.get("/api/v1/deliveries", {"send": send_id, "status": "skipped_read"})
    assert [r["id"] for r in listed.json()["results"]] == [row["id"]]


def test_an_unread_notification_is_emailed_after_the_delay_not_before(alpha, world):
    key = ruled_type(alpha, {"email": {"delay_seconds": 2, "only_if_unread": True}})
    external_id, address = recipient()
    used = emails_used(world)
    with (
        smtp_sink() as sink,
        running_beat(**SWEEP),
        running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER),
    ):
        send_id = send(alpha, key, [{"id": external_id, "email": address}])
        row = the_row(alpha, send_id)
        deliver_at = when(row["deliver_at"])
        assert row["status"] == "queued"
        assert 1.5 <= (deliver_at - when(row["created_at"])).total_seconds() <= 2.5
        inbox = end_user(alpha, external_id).get("/api/v1/me/notifications").json()
        assert len(inbox["results"]) == 1  # the in-app copy is there at once
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")

    assert row["status"] == "sent"
    assert when(row["sent_at"]) >= deliver_at
    assert len(sink.to(address)) == 1
    assert emails_used(world) == used + 1


def test_archived_counts_as_read_and_a_sends_rules_override_its_types(alpha):
    key = ruled_type(alpha, {"email": {"delay_seconds": 3600, "only_if_unread": True}})
    archiving, archived_address = recipient()
    hurried, hurried_address = recipient()
    with (
        smtp_sink() as sink,
        running_beat(**SWEEP),
        running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER),
    ):
        late = send(
            alpha, key, [{"id": archiving, "email": archived_address}],
            channel_rules={"email": {"delay_seconds": 1, "only_if_unread": True}},
        )  # fmt: skip
        row = the_row(alpha, late)
        archived = end_user(alpha, archiving).patch(
            f"/api/v1/me/notifications/{row['notification']}", {"archived": True}
        )
        assert archived.status_code == 200
        # the send's rule for email replaces the type's whole: no delay, no condition
        now = send(
            alpha, key, [{"id": hurried, "email": hurried_address}],
            channel_rules={"email": {}},
        )  # fmt: skip
        assert wait_until(lambda: settled(alpha, now, 1), timeout=30)[0]["status"] == "sent"
        [row] = wait_until(lambda: settled(alpha, late, 1), timeout=30, what="settled")
        unruled = send(alpha, key, [unique("user")])  # the type's rule: an hour

    assert row["status"] == "skipped_read"
    assert sink.to(archived_address) == []
    assert len(sink.to(hurried_address)) == 1
    held = the_row(alpha, unruled)
    assert held["status"] == "queued"
    assert 3590 <= (when(held["deliver_at"]) - when(held["created_at"])).total_seconds() <= 3610


def test_a_scheduled_sends_delay_counts_from_its_send_at(alpha):
    key = ruled_type(alpha, {"email": {"delay_seconds": 1, "only_if_unread": True}})
    external_id, address = recipient()
    send_at = timezone.now() + timedelta(seconds=2)
    with (
        smtp_sink() as sink,
        running_beat(**SWEEP, BEAT_INTERVALS="release-due-sends=0.3"),
        running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER),
    ):
        send_id = send(
            alpha, key, [{"id": external_id, "email": address}], send_at=send_at.isoformat()
        )
        assert deliveries(alpha, send_id) == []  # nothing before the release
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")
    assert row["status"] == "sent"
    assert when(row["deliver_at"]) == send_at + timedelta(seconds=1)
    assert when(row["sent_at"]) >= send_at + timedelta(seconds=1)
    assert len(sink.to(address)) == 1


def test_a_critical_types_rules_still_apply(alpha):
    """Critical only overrides opt-outs: its email still waits, and is skipped once read."""
    key = ruled_type(alpha, {"email": {"delay_seconds": 2, "only_if_unread": True}}, critical=True)
    external_id, address = recipient()
    with smtp_sink() as sink, releasing(EMAIL_URL=sink.url):
        send_id = send(alpha, key, [{"id": external_id, "email": address}])
        row = the_row(alpha, send_id)
        assert row["status"] == "queued"
        user = end_user(alpha, external_id)
        assert user.post("/api/v1/me/notifications/read_all").status_code == 200
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="settled")
    assert row["status"] == "skipped_read"
    assert sink.to(address) == []


def test_a_read_racing_the_release_never_both_wins_and_is_emailed(alpha, world):
    """30 sends, each released about a second after it is made, each read near that moment.
    Triggers (test-only, in the tenant's schema) log when each claim and each read changed
    its row, on the database's clock: an email went out only if the read came after the claim
    (it waited for the claim's lock, or started later), and a skipped email was never sent."""
    key = ruled_type(alpha, {"email": {"delay_seconds": 1, "only_if_unread": True}})
    tenant = world.tenant_a
    with tenant_context(tenant), connection.cursor() as cursor:
        cursor.execute(PROBE_SQL)
    try:
        with (
            smtp_sink() as sink,
            running_beat(EMAIL_SWEEP_SECONDS="0.1"),
            running_worker(QUEUE, EMAIL_URL=sink.url, EMAIL_SWEEP_SECONDS="0.1"),
        ):
            cases, readers = [], []
            for _ in range(30):
                external_id, address = recipient()
                user = end_user(alpha, external_id)
                send_id = send(alpha, key, [{"id": external_id, "email": address}])
                row = the_row(alpha, send_id)
                cases.append((send_id, row, address, user))
                # reads from 0.5 s before the release to 1.3 s after it
                offset = (len(cases) % 10) * 0.2 - 0.5
                reader = threading.Thread(target=_read_near_release, args=(row, user, offset))
                readers.append(reader)
                readers[-1].start()
            for reader in readers:
                reader.join()
            rows = [
                wait_until(lambda s=send_id: settled(alpha, s, 1), timeout=60)[0]
                for send_id, *_ in cases
            ]
            # every row is final; an email is in the sink before its row can be recorded sent
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute("SELECT kind, row_id, at FROM escalation_probe")
            log = {(kind, row_id): at for kind, row_id, at in cursor.fetchall()}
    finally:
        with tenant_context(tenant), connection.cursor() as cursor:
            cursor.execute(PROBE_DROP_SQL)

    statuses = [row["status"] for row in rows]
    assert set(statuses) <= {"sent", "skipped_read"}, statuses
    for (_send_id, first, address, _user), row in zip(cases, rows, strict=True):
        read_at = log[("read", first["notification"])]
        if row["status"] == "sent":
            assert read_at > log[("claim", row["id"])], row
            assert len(sink.to(address)) == 1
        else:
            assert ("claim", row["id"]) not in log
            assert sink.to(address) == []
    # both outcomes happened, so the reads did race the releases
    assert "sent" in statuses, statuses
    assert "skipped_read" in statuses, statuses


def _read_near_release(row: dict, user: Caller, offset: float) -> None:
    due = when(row["deliver_at"]).timestamp()
    time.sleep(max(0.0, due + offset - time.time()))
    try:
        response = user.patch(f"/api/v1/me/notifications/{row['notification']}", {"is_read": True})
        assert response.status_code == 200, response.content
    finally:
        connections.close_all()  # this thread's own connection


PROBE_SQL = f"""
CREATE TABLE escalation_probe (kind text, row_id bigint, at timestamptz DEFAULT clock_timestamp());
CREATE FUNCTION escalation_probe_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempts > OLD.attempts THEN
        INSERT INTO escalation_probe (kind, row_id) VALUES ('claim', NEW.id);
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION escalation_probe_read() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.read_at IS NULL AND NEW.read_at IS NOT NULL THEN
        INSERT INTO escalation_probe (kind, row_id) VALUES ('read', NEW.id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER escalation_probe_claim AFTER UPDATE ON {Delivery._meta.db_table}
    FOR EACH ROW EXECUTE FUNCTION escalation_probe_claim();
CREATE TRIGGER escalation_probe_read AFTER UPDATE ON notifications_notification
    FOR EACH ROW EXECUTE FUNCTION escalation_probe_read();
"""
PROBE_DROP_SQL = f"""
DROP TRIGGER IF EXISTS escalation_probe_claim ON {Delivery._meta.db_table};
DROP TRIGGER IF EXISTS escalation_probe_read ON notifications_notification;
DROP FUNCTION IF EXISTS escalation_probe_claim();
DROP FUNCTION IF EXISTS escalation_probe_read();
DROP TABLE IF EXISTS escalation_probe;
"""


def test_a_delayed_digest_email_joins_the_batch_open_at_its_release(alpha, world):
    key = ruled_type(
        alpha,
        {"email": {"delay_seconds": 2}},
        channels=["in_app", "email"],
        digest_window_seconds=600,
    )
    external_id, address = recipient()
    with (
        smtp_sink() as sink,
        running_beat(**SWEEP),
        running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER),
    ):
        send_id = send(alpha, key, [{"id": external_id, "email": address}])
        row = the_row(alpha, send_id)
        assert row["status"] == "queued"
        with tenant_context(world.tenant_a):
            assert not DigestBatch.objects.filter(recipient__external_id=external_id).exists()
        row = wait_until(
            lambda: (r := the_row(alpha, send_id))["status"] == "batched" and r, timeout=30
        )
        with tenant_context(world.tenant_a):
            [batch] = DigestBatch.objects.filter(recipient__external_id=external_id)
        assert batch.status == "open"
        assert batch.opened_at >= when(row["deliver_at"])  # opened at the release, not the send
        close_now(world.tenant_a)
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="digest sent")
    assert row["status"] == "sent"
    assert len(sink.to(address)) == 1


def test_an_opted_out_user_stays_skipped_for_their_preference(alpha):
    key = ruled_type(alpha, {"email": {"delay_seconds": 1, "only_if_unread": True}})
    external_id, address = recipient()
    assert send(alpha, key, [{"id": external_id, "email": address}])  # the user exists
    user = end_user(alpha, external_id)
    assert user.put("/api/v1/me/preferences", {"channels": {"email": False}}).status_code == 200
    send_id = send(alpha, key, [external_id])
    row = the_row(alpha, send_id)
    assert row["status"] == "skipped_preference"


def test_a_delayed_push_waits_then_is_pushed(alpha, settings):
    import ipaddress

    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)
    key = ruled_type(
        alpha, {"push": {"delay_seconds": 2, "only_if_unread": True}}, channels=["in_app", "push"]
    )
    with push_service() as service, releasing(WEBHOOK_ALLOWED_CIDRS="127.0.0.2/32"):
        external_id = unique("user")
        user = end_user(alpha, external_id)
        browser = Browser()
        created = user.post("/api/v1/me/push-subscriptions", service.subscription(browser))
        assert created.status_code == 201, created.content
        send_id = send(alpha, key, [external_id])
        row = the_row(alpha, send_id, "push")
        assert row["status"] == "queued"
        assert service.received(browser) == []
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="pushed")
        assert len(service.received(browser)) == 1
    assert row["status"] == "sent"
    assert when(row["sent_at"]) >= when(row["deliver_at"])


def test_webhook_events_follow_the_delayed_delivery_and_none_for_a_read_one(
    db, world, settings, alice_key, erin
):
    """In this process (a worker's turn called directly): the email that goes out after its
    delay writes its delivery.sent event then; the one skipped as read writes none."""
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network("127.0.0.2/32"),)
    tenant = world.tenant_a
    with schema_context(tenant.schema_name):
        webhook_endpoint_create(
            tenant=tenant,
            url="http://127.0.0.2:9/herald",
            events=["delivery.sent", "delivery.failed"],
        )
    key = ruled_type(alice_key, {"email": {"delay_seconds": 1, "only_if_unread": True}})
    address = f"{unique('hook')}@example.com"
    send_id = send(alice_key, key, ["user-1", {"id": unique("user"), "email": address}])
    with schema_context(tenant.schema_name):
        mine = Notification.objects.get(send_id=send_id, recipient__external_id="user-1")
    read = erin.patch(f"/api/v1/me/notifications/{mine.pk}", {"is_read": True})
    assert read.status_code == 200

    with smtp_sink() as sink, tenant_context(tenant):
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        assert not WebhookDelivery.objects.filter(delivery__send_id=send_id).exists()

        def released() -> dict[str, str] | None:
            deliveries_deliver(tenant=tenant)  # a worker's turn
            rows = Delivery.objects.filter(send_id=send_id)
            statuses = dict(rows.values_list("recipient__external_id", "status"))
            return statuses if "queued" not in statuses.values() else None

        statuses = wait_until(released, timeout=10, what="released")
        hooks = list(WebhookDelivery.objects.filter(delivery__send_id=send_id))
        sent = Delivery.objects.get(send_id=send_id, status="sent")
    assert sorted(statuses.values()) == ["sent", "skipped_read"]
    assert statuses["user-1"] == "skipped_read"
    assert [(h.event, h.delivery_id) for h in hooks] == [("delivery.sent", sent.pk)]
    assert len(sink.to(address)) == 1


# --- The API: rules on types and sends, validation, tenants ----------------------------------


def test_a_types_rules_are_saved_returned_and_only_its_tenants(alice_key, bob_key):
    key = unique("esc")
    rules = {"email": {"delay_seconds": 900, "only_if_unread": True}, "push": {}}
    assert alice_key.put(f"/api/v1/types/{key}", {"channel_rules": rules}).status_code == 201
    saved = {
        "email": {"delay_seconds": 900, "only_if_unread": True},
        "push": {"delay_seconds": 0, "only_if_unread": False},
    }
    assert alice_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == saved
    assert alice_key.get(f"/api/v1/types/{unique('esc')}").status_code == 404
    # another tenant neither sees nor changes it: its PUT makes a type of its own
    assert bob_key.get(f"/api/v1/types/{key}").status_code == 404
    assert bob_key.put(f"/api/v1/types/{key}", {"channel_rules": {}}).status_code == 201
    assert bob_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == {}
    assert alice_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == saved
    # a PUT without channel_rules keeps them; {} clears them
    assert alice_key.put(f"/api/v1/types/{key}", {"name": "Renamed"}).status_code == 200
    assert alice_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == saved
    assert alice_key.put(f"/api/v1/types/{key}", {"channel_rules": {}}).status_code == 200
    assert alice_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == {}


@pytest.mark.parametrize(
    ("rules", "detail"),
    [
        ([], "channel_rules"),
        ({"in_app": {"delay_seconds": 60}}, "channel_rules.in_app"),
        ({"sms": {}}, "channel_rules.sms"),
        ({"email": 900}, "channel_rules.email"),
        ({"email": {"delay_seconds": -1}}, "channel_rules.email.delay_seconds"),
        ({"email": {"delay_seconds": 604801}}, "channel_rules.email.delay_seconds"),
        ({"email": {"delay_seconds": 1.5}}, "channel_rules.email.delay_seconds"),
        ({"email": {"delay_seconds": "60"}}, "channel_rules.email.delay_seconds"),
        ({"email": {"delay_seconds": True}}, "channel_rules.email.delay_seconds"),
        ({"email": {"only_if_unread": "yes"}}, "channel_rules.email.only_if_unread"),
        ({"email": {"delay": 60}}, "channel_rules.email.delay"),
    ],
)
def test_invalid_rules_are_refused_with_the_field_named(alice_key, rules, detail):
    key = unique("esc")
    for response in (
        alice_key.put(f"/api/v1/types/{key}", {"channel_rules": rules}),
        alice_key.post(
            "/api/v1/notifications",
            {"type": key, "recipients": ["user-1"], "message": "Hi", "channel_rules": rules},
        ),
    ):
        assert response.status_code == 400, response.content
        assert error_code(response) == "invalid"
        details = response.json()["error"]["details"]
        assert list(details) == [detail], details
    assert alice_key.get(f"/api/v1/types/{key}").status_code == 404  # nothing was written


def test_the_largest_delay_is_accepted(alice_key):
    key = unique("esc")
    rules = {"email": {"delay_seconds": 604800, "only_if_unread": False}}
    assert alice_key.put(f"/api/v1/types/{key}", {"channel_rules": rules}).status_code == 201
    assert alice_key.get(f"/api/v1/types/{key}").json()["channel_rules"] == rules


def test_a_send_without_in_app_delivers_only_if_unread_as_unread(alpha):
    key = ruled_type(alpha, {"email": {"delay_seconds": 0, "only_if_unread": True}})
    external_id, address = recipient()
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url, **WORKER):
        send_id = send(alpha, key, [{"id": external_id, "email": address}], channels=["email"])
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")
    assert row["status"] == "sent"
    assert row["notification"] is None
    assert len(sink.to(address)) == 1
