"""Webhook delivery end to end: real Celery workers POST queued events to a real receiver on
127.0.0.2 that verifies every signature with the ``standardwebhooks`` library.

Rows are written as the outbox writers will write them (the ORM, then ``webhooks_enqueue``):
``notification.*`` rows with an empty body and a notification from a real send as subject, the
others with a body already fixed, as a test event carries it.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import override_settings
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from notifications.services import delivery_machine as machine
from notifications.services.turns import turns_request
from notifications.webhooks.delivery import WebhookSchedule, webhooks_enqueue
from notifications.webhooks.events import NOTIFICATION_CREATED, webhook_message_id
from notifications.webhooks.signing import webhook_secret_new, webhook_secret_seal
from tests.billing.test_limits import override
from tests.conftest import _end_user_caller
from tests.support.api import Caller
from tests.support.processes import running_worker, wait_until
from tests.support.smtp import smtp_sink
from tests.support.webhook_receiver import (
    CIDRS,
    CLOSE,
    Sleep,
    WebhookReceiver,
    closed_port_url,
    webhook_receiver,
)

QUEUE = settings.CELERY_TASK_DEFAULT_QUEUE
ALLOWED = {"WEBHOOK_ALLOWED_CIDRS": CIDRS}
# Retries a test can wait for: 0.3 s apart, 3 attempts, a one-second deadline per request.
FAST = {
    "WEBHOOK_RETRY_SCHEDULE": "0.3",
    "WEBHOOK_RETRY_JITTER": "0",
    "WEBHOOK_MAX_ATTEMPTS": "3",
    "WEBHOOK_TIMEOUT_SECONDS": "1",
}


@pytest.fixture(autouse=True)
def receivers_allowed(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = (ipaddress.ip_network(CIDRS),)


@pytest.fixture
def hooks(committed, world):
    """Committed endpoints and events (the worker is another process), removed afterwards."""
    yield
    for tenant in (world.tenant_a, world.tenant_b):
        with schema_context(tenant.schema_name):
            WebhookEndpoint.objects.all().delete()  # and their events and attempts


def hook(receiver: WebhookReceiver, tenant, path: str, *answers, **fields) -> WebhookEndpoint:
    secret = webhook_secret_new()
    url = receiver.expect(path, secret, *answers)
    return endpoint_at(tenant, url, secret=secret, **fields)


def endpoint_at(tenant, url: str, *, secret: str | None = None, **fields) -> WebhookEndpoint:
    secret = secret or webhook_secret_new()
    with schema_context(tenant.schema_name):
        return WebhookEndpoint.objects.create(
            url=url, secret_encrypted=webhook_secret_seal(secret), **fields
        )


def a_body(n: int = 1) -> str:
    return json.dumps({"type": "webhook.test", "timestamp": timezone.now().isoformat(), "n": n})


def queue_event(tenant, endpoint, *, notification_id=None, body="") -> WebhookDelivery:
    now = timezone.now()
    with schema_context(tenant.schema_name):
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            event=NOTIFICATION_CREATED if notification_id else "webhook.test",
            msg_id=webhook_message_id(),
            notification_id=notification_id,
            body=body,
            occurred_at=now,
            created_at=now,
            updated_at=now,
        )


def enqueue(tenant, count: int) -> None:
    with schema_context(tenant.schema_name):
        webhooks_enqueue(tenant=tenant, count=count, now=timezone.now())


def fresh(tenant, row):
    with schema_context(tenant.schema_name):
        return type(row).objects.get(pk=row.pk)


def settled(tenant, *rows: WebhookDelivery) -> list[WebhookDelivery] | None:
    with schema_context(tenant.schema_name):
        found = list(WebhookDelivery.objects.filter(pk__in=[r.pk for r in rows]).order_by("pk"))
    return found if all(r.status != "queued" for r in found) else None


def attempts_of(tenant, row) -> list[WebhookAttempt]:
    with schema_context(tenant.schema_name):
        return list(WebhookAttempt.objects.filter(delivery_id=row.pk).order_by("pk"))


def a_notification(api: Caller, tenant, recipient: str = "user-1") -> Notification:
    """A notification of a real send to ``recipient``, as its webhook events' subject."""
    key = f"hook-{uuid.uuid4().hex[:8]}"
    assert api.put(
        f"/api/v1/types/{key}", {"name": "Hooks", "channels": ["in_app"]}
    ).status_code in (
        200,
        201,
    )
    response = api.post(
        "/api/v1/notifications",
        {"type": key, "recipients": [recipient], "title": "Hello", "message": "Ada replied"},
    )
    assert response.status_code == 202, response.content
    send_id = response.json()["id"]

    def made() -> Notification | None:
        with schema_context(tenant.schema_name):
            return Notification.objects.filter(send_id=send_id).first()

    return wait_until(made, timeout=20, what="the send's notification")


def test_a_queued_event_is_posted_signed_and_logged_by_a_worker_of_its_tenant_only(
    alpha, world, hooks
):
    a, b = world.tenant_a, world.tenant_b
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED):
        notification = a_notification(alpha, a)
        endpoint = hook(receiver, a, "/a")
        row = queue_event(a, endpoint, notification_id=notification.pk)
        # Tenant B's event, queued but without a turn of B: A's turns must not touch it.
        row_b = queue_event(b, hook(receiver, b, "/b"), body=a_body())
        enqueue(a, 1)
        [sent] = wait_until(lambda: settled(a, row), timeout=30, what="the event sent")

    [request] = receiver.received("/a")
    assert request.verified, request.error
    assert request.msg_id == row.msg_id
    assert request.headers["content-type"] == "application/json"
    assert "Herald" in request.headers["user-agent"]
    body = json.loads(request.body)
    assert body["type"] == "notification.created"
    assert body["data"]["id"] == notification.pk
    assert body["data"]["recipient"] == "user-1"
    assert body["data"]["title"] == "Hello"
    assert (sent.status, sent.attempts, sent.last_status_code) == ("sent", 1, 200)
    assert sent.sent_at is not None
    assert sent.body.encode() == request.body  # stored: a retry would send these bytes
    [attempt] = attempts_of(a, row)
    assert attempt.status_code == 200
    assert attempt.latency_ms is not None
    assert "ok" in attempt.response_excerpt
    assert fresh(b, row_b).status == "queued"
    assert receiver.received("/b") == []


def test_a_send_and_a_read_reach_an_endpoint_registered_through_the_api(alpha, world, hooks):
    """The whole path: endpoint by the API, event rows written by the send and the read,
    POSTed signed by a worker, with the secret the API showed once."""
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED):
        created = alpha.post("/api/v1/webhook-endpoints", {"url": receiver.url("/e2e")})
        assert created.status_code == 201, created.content
        receiver.expect("/e2e", created.json()["secret"])
        notification = a_notification(alpha, world.tenant_a)
        [made] = wait_until(lambda: receiver.received("/e2e"), timeout=30, what="created")
        reader = _end_user_caller(alpha, "user-1")
        read = reader.patch(f"/api/v1/me/notifications/{notification.pk}", {"is_read": True})
        assert read.status_code == 200, read.content
        both = wait_until(
            lambda: (got := receiver.received("/e2e"))[1:] and got, timeout=30, what="read"
        )

    assert [request.verified for request in both] == [True, True]
    bodies = [json.loads(request.body) for request in both]
    assert [body["type"] for body in bodies] == ["notification.created", "notification.read"]
    assert {body["data"]["id"] for body in bodies} == {notification.pk}
    assert bodies[0]["data"]["is_read"] is False
    assert bodies[1]["data"]["is_read"] is True
    assert bodies[1]["data"]["recipient"] == "user-1"
    assert made.msg_id != both[1].msg_id


def test_a_server_error_is_retried_within_seconds_with_the_same_id_and_body(alpha, world, hooks):
    a = world.tenant_a
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED):  # default schedule
        notification = a_notification(alpha, a)
        endpoint = hook(receiver, a, "/flaky", 500, 200)
        row = queue_event(a, endpoint, notification_id=notification.pk)
        enqueue(a, 1)
        [done] = wait_until(lambda: settled(a, row), timeout=30, what="the retry sent")

    first, second = receiver.received("/flaky")
    assert second.at - first.at < 10  # the first retry comes within 10 s
    assert first.verified
    assert second.verified
    assert first.msg_id == second.msg_id == row.msg_id
    assert first.body == second.body
    assert (done.status, done.attempts, done.last_status_code) == ("sent", 2, 200)
    assert [a.status_code for a in attempts_of(a, row)] == [500, 200]


def test_a_4xx_fails_at_once_and_timeouts_and_broken_connections_are_retried_until_given_up(
    world, hooks
):
    a = world.tenant_a
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED, **FAST):
        gone = queue_event(a, hook(receiver, a, "/gone", 410), body=a_body())
        slow = queue_event(a, hook(receiver, a, "/slow", Sleep(3)), body=a_body())
        refused = queue_event(a, endpoint_at(a, closed_port_url()), body=a_body())
        cut = queue_event(a, hook(receiver, a, "/cut", CLOSE), body=a_body())
        erased = queue_event(a, hook(receiver, a, "/erased"), notification_id=2**40)
        enqueue(a, 5)
        rows = wait_until(
            lambda: settled(a, gone, slow, refused, cut, erased),
            timeout=60,
            interval=0.2,
            what="every event settled",
        )

    by_id = {row.pk: row for row in rows}
    gone, slow, refused, cut, erased = (by_id[r.pk] for r in (gone, slow, refused, cut, erased))
    assert (gone.status, gone.attempts, gone.last_status_code) == ("failed", 1, 410)
    assert len(receiver.received("/gone")) == 1
    assert "410" in gone.last_error
    for row, kind in ((slow, "timeout"), (refused, "connection"), (cut, "")):
        assert (row.status, row.attempts) == ("failed", 3), row.last_error
        assert "Gave up after 3 attempts" in row.last_error
        assert kind in row.last_error
        assert len(attempts_of(a, row)) == 3
    assert len(receiver.received("/slow")) == 3
    assert all(r.verified for r in receiver.received())
    assert [x.error.split(":")[0] for x in attempts_of(a, slow)] == ["timeout"] * 3
    assert (erased.status, erased.attempts) == ("failed", 1)
    assert "no longer exists" in erased.last_error
    assert receiver.received("/erased") == []


def test_erasing_a_user_empties_their_events_bodies_and_stops_their_retries(alpha, world, hooks):
    """An event whose first attempt failed keeps its body for the retries: the erasure empties
    it, so the next attempt finds neither body nor notification and fails the event unsent."""
    a = world.tenant_a
    user = f"erased-{uuid.uuid4().hex[:8]}"
    slow_retry = {**FAST, "WEBHOOK_RETRY_SCHEDULE": "600"}  # the retry waits for the test
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED, **slow_retry):
        notification = a_notification(alpha, a, recipient=user)
        endpoint = hook(receiver, a, "/erase", 500, 200)
        row = queue_event(a, endpoint, notification_id=notification.pk)
        enqueue(a, 1)
        wait_until(
            lambda: fresh(a, row).attempts == 1 and fresh(a, row).locked_until,
            timeout=30,
            what="the first attempt recorded",
        )
        assert "Ada replied" in fresh(a, row).body
        assert alpha.delete(f"/api/v1/users/{user}").status_code == 204
        erased = fresh(a, row)
        assert (erased.body, erased.notification_id, erased.status) == ("", None, "queued")
        with schema_context(a.schema_name):
            WebhookDelivery.objects.filter(pk=row.pk).update(locked_until=None)
        enqueue(a, 1)
        [done] = wait_until(lambda: settled(a, row), timeout=30, what="the event settled")

    assert done.status == "failed"
    assert "no longer exists" in done.last_error
    assert len(receiver.received("/erase")) == 1  # the retry never left
    assert done.body == ""


def test_a_used_up_webhook_quota_suppresses_the_event_without_a_request(world, hooks):
    a = world.tenant_a
    override(a, monthly_webhook_quota=0)
    try:
        with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED):
            row = queue_event(a, hook(receiver, a, "/quota"), body=a_body())
            enqueue(a, 1)
            [done] = wait_until(lambda: settled(a, row), timeout=30, what="suppressed")
    finally:
        override(a)
    assert done.status == "suppressed_quota"
    assert "quota" in done.last_error
    assert receiver.received("/quota") == []
    assert attempts_of(a, row) == []


def test_a_secret_the_keys_no_longer_open_is_retried_with_the_reason_and_nothing_posted(
    world, hooks
):
    a = world.tenant_a
    with webhook_receiver() as receiver, running_worker(QUEUE, **ALLOWED, **FAST):
        endpoint = hook(receiver, a, "/sealed")
        with schema_context(a.schema_name):  # sealed with a key no longer configured
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(secret_encrypted="gAAAA-old")
        rows = [queue_event(a, endpoint, body=a_body(n)) for n in range(2)]
        enqueue(a, 2)
        done = wait_until(lambda: settled(a, *rows), timeout=30, what="given up")
    assert [row.status for row in done] == ["failed", "failed"]
    assert all("HERALD_ENCRYPTION_KEYS" in row.last_error for row in done)
    assert receiver.received("/sealed") == []


def test_an_endpoint_failing_for_days_is_disabled_and_its_admins_told_once(world, hooks):
    a = world.tenant_a
    with smtp_sink() as sink, webhook_receiver() as receiver:
        failing = hook(receiver, a, "/down", 503)
        with schema_context(a.schema_name):
            WebhookEndpoint.objects.filter(pk=failing.pk).update(
                failing_since=timezone.now() - timedelta(days=6)
            )
        off = hook(receiver, a, "/off", enabled=False)
        row = queue_event(a, failing, body=a_body(1))
        later = queue_event(a, failing, body=a_body(2))
        waiting = queue_event(a, off, body=a_body(3))
        with running_worker(QUEUE, EMAIL_URL=sink.url, **ALLOWED):
            enqueue(a, 3)
            wait_until(
                lambda: not fresh(a, failing).enabled, timeout=30, what="the endpoint disabled"
            )
            [mail] = wait_until(
                lambda: sink.to(world.alice.email), timeout=30, what="the admins' email"
            )

    disabled = fresh(a, failing)
    assert "failed since" in disabled.disabled_reason
    assert disabled.failing_since is not None
    assert "webhook endpoint disabled" in mail["Subject"]
    text = mail.get_body(("plain",)).get_content()
    assert failing.url in text
    assert '"enabled": true' in text
    assert len(sink.to(world.alice.email)) == 1
    assert len(receiver.received("/down")) == 1  # then it was off: the next event waits
    row, later, waiting = fresh(a, row), fresh(a, later), fresh(a, waiting)
    assert (row.status, row.attempts, row.last_status_code) == ("queued", 1, 503)
    assert (later.status, later.attempts) == ("queued", 0)
    assert (waiting.status, waiting.attempts) == ("queued", 0)
    assert receiver.received("/off") == []


def test_one_endpoint_never_gets_two_requests_at_once_and_gets_its_events_in_order(world, hooks):
    a = world.tenant_a
    small_turns = {"WEBHOOK_BATCH_SIZE": "2", **ALLOWED}
    with webhook_receiver() as receiver:
        one = hook(receiver, a, "/one", Sleep(0.2))
        other = hook(receiver, a, "/other", Sleep(0.2))
        rows = [queue_event(a, ep, body=a_body(n)) for n in range(6) for ep in (one, other)]
        with running_worker(QUEUE, **small_turns), running_worker(QUEUE, **small_turns):
            enqueue(a, len(rows))
            turns_request(tenant_id=a.pk, wanted=2)  # both workers busy from the start
            wait_until(lambda: settled(a, *rows), timeout=60, what="every event sent")

    assert receiver.max_in_flight("/one") == 1
    assert receiver.max_in_flight("/other") == 1
    for endpoint, path in ((one, "/one"), (other, "/other")):
        expected = [r.msg_id for r in rows if r.endpoint_id == endpoint.pk]
        assert [r.msg_id for r in receiver.received(path)] == expected


def test_a_slow_endpoint_of_one_tenant_does_not_hold_back_another_tenant(world, hooks):
    a, b = world.tenant_a, world.tenant_b
    with (
        webhook_receiver() as receiver,
        running_worker(QUEUE, pool="prefork", concurrency=2, **ALLOWED),
    ):
        slow = hook(receiver, a, "/a-slow", Sleep(25))
        for n in range(4):
            queue_event(a, slow, body=a_body(n))
        enqueue(a, 4)
        wait_until(lambda: receiver.received("/a-slow"), timeout=30, what="A's first request")
        fast = hook(receiver, b, "/b-fast")
        queue_event(b, fast, body=a_body())
        queued_at = time.monotonic()
        enqueue(b, 1)
        [request] = wait_until(
            lambda: receiver.received("/b-fast"), timeout=15, what="B's event delivered"
        )
    assert request.at - queued_at < 10
    assert request.verified
    assert len(receiver.received("/a-slow")) == 1  # one timeout per turn, not one per event


def test_a_turn_delivers_its_endpoints_in_parallel_and_counts_webhook_deliveries(world, hooks):
    """In this process, as a turn calls it: three endpoints answering in 0.5 s each take one
    turn about 0.5 s, not 1.5 s."""
    from prometheus_client import REGISTRY

    from notifications.services.leases import Holding
    from notifications.webhooks.delivery import webhooks_deliver

    def sent_count() -> float:
        labels = {"channel": "webhook", "status": "sent"}
        return REGISTRY.get_sample_value("herald_deliveries_total", labels) or 0.0

    a = world.tenant_a
    with webhook_receiver() as receiver:
        rows = [
            queue_event(a, hook(receiver, a, f"/p{n}", Sleep(0.5)), body=a_body(n))
            for n in range(3)
        ]
        before = sent_count()
        started = time.monotonic()
        with schema_context(a.schema_name):
            done = webhooks_deliver(tenant=a, holding=Holding())
        elapsed = time.monotonic() - started

    assert done == 3
    assert elapsed < 1.4
    assert [r.status for r in settled(a, *rows) or []] == ["sent"] * 3
    assert sent_count() - before == 3
    with schema_context(a.schema_name):
        assert not WebhookEndpoint.objects.filter(busy_until__isnull=False).exists()


class TestRetryPolicy:
    def test_webhooks_retry_first_within_10s_at_least_8_times_over_a_day(self):
        policy = WebhookSchedule()
        assert policy.max_attempts() >= 8
        assert policy.delay(1) <= 10
        waits = [policy.delay(n) for n in range(1, policy.max_attempts())]
        assert sum(waits) >= 24 * 3600
        assert len(waits) >= 7

    @override_settings(WEBHOOK_RETRY_SCHEDULE=(10, 100), WEBHOOK_RETRY_JITTER=0.2)
    def test_the_schedule_varies_by_the_jitter_and_repeats_its_last_wait(self):
        policy = WebhookSchedule()
        assert all(8 <= policy.delay(1) <= 12 for _ in range(50))
        assert all(80 <= policy.delay(n) <= 120 for n in (2, 3, 9) for _ in range(20))

    def test_email_keeps_its_exponential_backoff(self):
        retry = machine.Outcome(machine.Status.FAILED, "451", retry=True)
        base, top = settings.DELIVERY_RETRY_BASE_SECONDS, settings.DELIVERY_RETRY_MAX_SECONDS
        assert machine.retry_delay(retry, 1) == (retry, base)
        assert machine.retry_delay(retry, 2) == (retry, min(base * 2, top))
        outcome, delay = machine.retry_delay(retry, settings.DELIVERY_MAX_ATTEMPTS)
        assert (outcome.status, delay) == (machine.Status.FAILED, None)
