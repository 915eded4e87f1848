"""Email deliveries end to end: a real Celery worker sends to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import signal
import time
from urllib.parse import urlsplit

from django.conf import settings

from tests.notifications.email_support import (
    FAST_RETRIES,
    QUEUE,
    close_now,
    deliveries,
    digest_type,
    email_type,
    open_batches,
    redis_client,
    send,
    settled,
    unique,
)
from tests.support.api import Caller
from tests.support.processes import http, running_web, running_worker, wait_until
from tests.support.smtp import smtp_sink


def test_an_email_arrives_once_rendered_with_sender_and_unsubscribe_headers(alpha, world):
    key = email_type(
        alpha,
        email_subject="{{ title }} for {{ user.name }}",
        email_text="{{ message }} ({{ data.thread }})",
        email_html="<p>{{ message }} &middot; {{ data.thread }}</p>",
    )
    address = f"{unique('ada')}@example.com"
    recipient = {"id": unique("user"), "email": address, "name": "Ada"}
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        send_id = send(alpha, key, [recipient], title="New reply", data={"thread": "T-7 <b>"})
        rows = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")

    assert [row["status"] for row in rows] == ["sent"]
    assert rows[0]["attempts"] == 1
    assert rows[0]["notification"] is not None  # the in-app copy of the same send
    [message] = sink.to(address)  # exactly once
    assert message["Subject"] == "New reply for Ada"
    assert "Alpha" in message["From"]
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # production settings in the worker: https on the tenant's own host
    assert message["List-Unsubscribe"].strip().startswith(f"<https://{world.alice.host}/unsub")
    assert message.get_body(("plain",)).get_content().strip() == "Ada replied (T-7 <b>)"
    assert "T-7 &lt;b&gt;" in message.get_body(("html",)).get_content()  # HTML is escaped
    summary = alpha.get(f"/api/v1/sends/{send_id}").json()["channels"]
    assert summary == {"in_app": {"sent": 1}, "email": {"sent": 1}}


def test_unsubscribe_link_turns_that_type_off_without_login(alpha, world):
    key = email_type(alpha)
    other_key = email_type(alpha)
    external_id, address = unique("user"), f"{unique('bo')}@example.com"
    recipient = {"id": external_id, "email": address}
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        first = send(alpha, key, [recipient])
        wait_until(lambda: settled(alpha, first, 1), timeout=30, what="first email")
        link = sink.to(address)[0]["List-Unsubscribe"].strip().strip("<>")
        path = urlsplit(link).path

        with running_web() as web:
            asked = http("GET", web.url + path, headers={"Host": world.alice.host})
            assert asked.status == 200
            assert "Unsubscribe?" in asked.body
            # Mail clients POST the one-click body of RFC 8058, with no session or CSRF token.
            done = http("POST", web.url + path, headers={"Host": world.alice.host}, body={})
            assert done.status == 200
            assert "no longer" in done.body
            forged = http("POST", web.url + path[:-3] + "xyz", headers={"Host": world.alice.host})
            assert forged.status == 404
            on_b = http("POST", web.url + path, headers={"Host": world.bob.host})
            assert on_b.status == 404  # a link of tenant A means nothing on B's host

        muted = send(alpha, key, [external_id])
        still = send(alpha, other_key, [external_id])
        assert [r["status"] for r in wait_until(lambda: settled(alpha, muted, 1))] == [
            "skipped_preference"
        ]
        assert [r["status"] for r in wait_until(lambda: settled(alpha, still, 1))] == ["sent"]
    assert len(sink.to(address)) == 2  # the first one and the other type's


def test_permanent_failures_stop_temporary_ones_retry(alpha):
    key = email_type(alpha)
    bounce, grey = f"bounce-{unique('x')}@example.com", f"greylist-{unique('x')}@example.com"
    recipients = [
        {"id": unique("user"), "email": bounce},
        {"id": unique("user"), "email": grey},
        {"id": unique("user")},  # no address
    ]
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url, **FAST_RETRIES):
        send_id = send(alpha, key, recipients, channels=["email"])
        rows = wait_until(lambda: settled(alpha, send_id, 3), timeout=30, what="settled")

    by_status = {row["status"]: row for row in rows}
    assert sorted(by_status) == ["failed", "sent"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 2
    assert any("550" in row["last_error"] and row["attempts"] == 1 for row in failed)
    assert any("no email address" in row["last_error"] for row in failed)
    assert by_status["sent"]["attempts"] == 2  # greylisted once, then accepted
    assert "451" in by_status["sent"]["last_error"] or by_status["sent"]["last_error"] == ""
    assert len(sink.to(grey)) == 1
    assert sink.to(bounce) == []


def test_a_worker_killed_mid_batch_loses_and_repeats_nothing(alpha):
    key = email_type(alpha)
    recipients = [{"id": unique("user"), "email": f"{unique('k')}@example.com"} for _ in range(12)]
    fast_recovery = {"DELIVERY_LEASE_SECONDS": "2", "EMAIL_TURN_TTL_SECONDS": "2"}
    with smtp_sink(delay=0.3) as sink:
        with running_worker(QUEUE, EMAIL_URL=sink.url, **fast_recovery) as worker:
            send_id = send(alpha, key, recipients, channels=["email"])
            wait_until(lambda: len(sink.received()) >= 3, timeout=30, what="some emails")
            sink.in_data.clear()
            wait_until(sink.in_data.is_set, timeout=10, what="a message in flight")
            os.kill(worker.pid, signal.SIGKILL)  # mid-message, before the server's 250
            worker.wait(timeout=10)
        sent_before = len(sink.received())
        assert sent_before < len(recipients)

        from notifications.tasks import sweep_deliveries

        with running_worker(QUEUE, EMAIL_URL=sink.url, **fast_recovery):

            def recovered() -> list[dict] | None:
                sweep_deliveries.apply_async()  # what beat runs every 30 s
                return settled(alpha, send_id, len(recipients))

            rows = wait_until(recovered, timeout=60, interval=1.0, what="all delivered")

    assert [row["status"] for row in rows] == ["sent"] * len(recipients)
    ids = {str(row["id"]) for row in rows}  # not mail earlier tests left queued for the tenant
    delivered = [m["X-Herald-Delivery"] for m in sink.received()]
    assert sorted(d for d in delivered if d in ids) == sorted(ids)  # each exactly once


def test_one_tenants_flood_does_not_hold_up_another_tenants_email(alpha, bravo, world):
    """One worker; tenant A queues 1,500 emails, then tenant B queues one. B's email goes out
    within seconds, while most of A's are still waiting: turns alternate between tenants."""
    from django_tenants.utils import tenant_context

    from notifications.models import Send
    from notifications.services.turns import _key

    flood = [{"id": unique("a"), "email": f"{unique('a')}@example.com"} for _ in range(1500)]
    flood_key, single_key = email_type(alpha), email_type(bravo)
    flood_send = None
    try:
        with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
            flood_send = send(alpha, flood_key, flood, channels=["email"])
            wait_until(lambda: len(sink.received()) >= 10, timeout=30, what="the flood started")
            single = send(bravo, single_key, [{"id": unique("b"), "email": "b@example.com"}])
            [row] = wait_until(lambda: settled(bravo, single, 1), timeout=30, what="B's email")
            flood_sent_then = len(sink.received()) - 1

        assert row["status"] == "sent"
        waited = _seconds(row["sent_at"]) - _seconds(row["created_at"])
        assert waited < 5, f"B waited {waited:.1f} s behind A's flood"
        assert flood_sent_then < len(flood) / 2, "B's email only went out after A's flood"
    finally:
        with tenant_context(world.tenant_a):
            Send.objects.filter(pk=flood_send).delete()  # the rest of the flood, unsent
        for slot in range(settings.EMAIL_TENANT_CONCURRENCY):
            redis_client().delete(_key(world.tenant_a.pk, slot))


def _seconds(timestamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def test_a_send_accepted_while_redis_is_down_is_delivered_once_it_is_back(committed, world):
    """Redis (broker, cache, bus) stops; the API still accepts the send (202, outbox rows
    committed); once Redis is back, the sweep gives the tenant a turn and the email goes out."""
    from celery import current_app

    from tests.support.processes import free_port, throwaway_redis

    port = free_port()
    redis_url = f"redis://127.0.0.1:{port}/0"
    address = f"{unique('outage')}@example.com"
    key = email_type(Caller(host=world.alice.host, token=world.alice.api_key))
    auth = {"Host": world.alice.host, "Authorization": f"Bearer {world.alice.api_key}"}
    body = {"type": key, "recipients": [{"id": unique("user"), "email": address}],
            "message": "sent during the outage", "channels": ["in_app", "email"]}  # fmt: skip
    with (
        smtp_sink() as sink,
        running_web(REDIS_URL=redis_url) as web,
        running_worker(QUEUE, REDIS_URL=redis_url, EMAIL_URL=sink.url),
    ):
        with throwaway_redis(port):
            pass  # up once, so both processes have connected; now it is gone
        accepted = http("POST", web.url + "/api/v1/notifications", headers=auth, body=body)
        assert accepted.status == 202, accepted.body

        with throwaway_redis(port), current_app.connection_for_write(redis_url) as broker:

            def delivered() -> bool:
                current_app.send_task(
                    "notifications.sweep_deliveries", queue=QUEUE, connection=broker
                )  # what beat runs every 30 s
                return bool(sink.to(address))

            wait_until(delivered, timeout=90, interval=2.0, what="the email after the outage")
    assert len(sink.to(address)) == 1


def test_a_digest_collects_concurrent_sends_into_one_batch_and_one_email(alpha, world):
    from notifications.tasks import close_due_digests
    from tests.support.processes import run_concurrently

    key = digest_type(alpha)
    user, address = unique("user"), f"{unique('dig')}@example.com"
    first = send(alpha, key, [{"id": user, "email": address}], title="One", batch_key="post-7")
    sends = run_concurrently(
        lambda: send(alpha, key, [user], message="Concurrent", batch_key="post-7"), times=4
    )
    other_key_send = send(alpha, key, [user], message="Elsewhere", batch_key="post-8")
    assert all(isinstance(s, int) for s in sends), sends
    assert len(open_batches(world.tenant_a, user)) == 2  # one per key, however many sends
    assert {r["status"] for r in deliveries(alpha, first)} == {"batched"}

    close_now(world.tenant_a)
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        close_due_digests.apply_async()
        for send_id in [first, *sends, other_key_send]:
            wait_until(lambda s=send_id: settled(alpha, s, 1), timeout=30, what="digest sent")

    digests = sink.to(address)
    assert len(digests) == 2  # post-7 and post-8
    by_subject = {m["Subject"]: m for m in digests}
    assert set(by_subject) == {"5 new notifications", "1 new notification"}
    text = by_subject["5 new notifications"].get_body(("plain",)).get_content()
    assert text.count("- ") == 5
    assert "One: Ada replied" in text
    assert open_batches(world.tenant_a, user) == []
    assert alpha.get(f"/api/v1/sends/{first}").json()["channels"] == {"email": {"sent": 1}}


def test_a_worker_killed_mid_digest_sends_it_once_with_every_item(alpha, world):
    from notifications.tasks import close_due_digests

    key = digest_type(alpha)
    user, address = unique("user"), f"{unique('dk')}@example.com"
    ids = [
        send(alpha, key, [{"id": user, "email": address}], message=f"item {n}") for n in range(3)
    ]
    close_now(world.tenant_a)
    fast_recovery = {"DELIVERY_LEASE_SECONDS": "2", "EMAIL_TURN_TTL_SECONDS": "2"}
    with smtp_sink(delay=1.0) as sink:
        with running_worker(QUEUE, EMAIL_URL=sink.url, **fast_recovery) as worker:
            close_due_digests.apply_async()
            wait_until(sink.in_data.is_set, timeout=30, what="the digest in flight")
            os.kill(worker.pid, signal.SIGKILL)  # items collected, email not yet accepted
            worker.wait(timeout=10)
        assert sink.to(address) == []
        late = send(alpha, key, [user], message="after the close")  # joins a new batch

        with running_worker(QUEUE, EMAIL_URL=sink.url, **fast_recovery):

            def recovered() -> bool:
                close_due_digests.apply_async()  # what beat runs every 10 s
                return all(settled(alpha, s, 1) for s in ids)

            wait_until(recovered, timeout=60, interval=1.0, what="the digest after the restart")

    [digest] = sink.to(address)
    text = digest.get_body(("plain",)).get_content()
    assert [f"item {n}" in text for n in range(3)] == [True, True, True]
    assert "after the close" not in text  # the later item waits for its own window
    assert [r["status"] for r in deliveries(alpha, late)] == ["batched"]
    assert len(open_batches(world.tenant_a, user)) == 1


def test_a_scheduled_send_emails_when_released_and_a_cancelled_one_never(alpha, world):
    from datetime import timedelta

    from django.utils import timezone
    from django_tenants.utils import tenant_context

    from notifications.models import Send
    from notifications.tasks import release_due_sends
    from tenants.due import due_at

    key = email_type(alpha)
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    kept_to, cancelled_to = f"{unique('kept')}@example.com", f"{unique('gone')}@example.com"
    kept = send(alpha, key, [{"id": unique("u"), "email": kept_to}], send_at=later)
    cancelled = send(alpha, key, [{"id": unique("u"), "email": cancelled_to}], send_at=later)
    assert deliveries(alpha, kept) == []  # held: nothing is written until it is due
    assert alpha.delete(f"/api/v1/sends/{cancelled}").json()["status"] == "cancelled"
    with tenant_context(world.tenant_a):
        Send.objects.filter(pk__in=[kept, cancelled]).update(send_at=timezone.now())
    due_at(tenant_id=world.tenant_a.pk, kind="send", when=timezone.now())  # as time passing

    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        release_due_sends.apply_async()
        [row] = wait_until(lambda: settled(alpha, kept, 1), timeout=30, what="released email")
    assert row["status"] == "sent"
    assert row["notification"] is not None  # the in-app copy appeared at release time too
    assert len(sink.to(kept_to)) == 1
    assert sink.to(cancelled_to) == []
    assert deliveries(alpha, cancelled) == []


# A template that parses and renders nothing but literal nodes, 3,000 per turn of 1,000 turns:
# only the render-time limit stops it. And four nested loops over a split 200-character string:
# 1.6 billion turns, stopped by the loop limit before the first one.
TIME_BOMB = "{% for a in (1..1000) %}" + '{% if "a" == "a" %}{% endif %}' * 3000 + "{% endfor %}"
LOOP_BOMB = (
    '{% assign s = "' + "x" * 200 + '" | split: "" %}'
    "{% for a in s %}{% for b in s %}{% for c in s %}{% for d in s %}{{ d }}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
)


def test_a_template_bomb_fails_its_deliveries_and_holds_up_nobody(alpha, bravo, world, web):
    """One worker. Tenant A sends with two template bombs (they parse, so they were saved),
    tenant B sends a plain email at the same time. A's deliveries fail with the limit in
    ``last_error`` (the time bomb costs the worker one render-time limit for the whole send,
    not one per recipient), B's email goes out right after, and the API answers promptly
    throughout."""
    time_bomb = email_type(alpha, email_text=TIME_BOMB)
    loop_bomb = email_type(alpha, email_html=LOOP_BOMB)
    plain = email_type(bravo)
    recipients = [{"id": unique("a"), "email": f"{unique('a')}@example.com"} for _ in range(3)]
    b_address = f"{unique('b')}@example.com"
    limit = 2.0
    auth = {"Authorization": f"Bearer {world.alice.api_key}"}
    latencies: list[float] = []

    def during_the_bomb() -> list[dict] | None:
        started = time.monotonic()
        answer = web.get(f"/api/v1/deliveries?send={timed}", host=world.alice.host, **auth)
        latencies.append(time.monotonic() - started)
        assert answer.status == 200
        return [r for r in answer.body["results"] if r["attempts"] == 1 and r["status"] == "queued"]

    with (
        smtp_sink() as sink,
        running_worker(QUEUE, EMAIL_URL=sink.url, TEMPLATE_RENDER_TIMEOUT_SECONDS=str(limit)),
    ):
        timed = send(alpha, time_bomb, recipients, channels=["email"])
        looped = send(alpha, loop_bomb, recipients[:1], channels=["email"])
        single = send(bravo, plain, [{"id": unique("b"), "email": b_address}], channels=["email"])
        # The worker is inside the time bomb's render: the API still answers at once.
        wait_until(during_the_bomb, timeout=30, interval=0.1, what="the bomb being rendered")
        failed = wait_until(lambda: settled(alpha, timed, 3), timeout=30, what="bomb failed")
        [b_row] = wait_until(lambda: settled(bravo, single, 1), timeout=30, what="B's email")
        [loop_row] = wait_until(lambda: settled(alpha, looped, 1), timeout=30, what="loop bomb")

    assert [row["status"] for row in failed] == ["failed"] * 3
    assert all("render time limit reached" in row["last_error"] for row in failed)
    assert all(row["last_error"].startswith("Template error: email_text") for row in failed)
    assert loop_row["status"] == "failed"
    assert "loop iteration limit reached" in loop_row["last_error"]
    assert b_row["status"] == "sent"
    assert len(sink.to(b_address)) == 1
    assert not [r for r in recipients if sink.to(r["email"])]  # nothing of A's went out
    # B waited for one render-time limit at most (A's turn came first), not one per recipient.
    waited = _seconds(b_row["sent_at"]) - _seconds(b_row["created_at"])
    assert waited < limit + 3, f"B waited {waited:.1f} s behind A's bomb"
    # Against the render-time limit, not a wall-clock budget a loaded machine may miss: one
    # more render (or an API request that waited for one) would take the whole limit.
    stamps = sorted(_seconds(row["updated_at"]) for row in failed)
    assert stamps[-1] - stamps[0] < limit / 2  # the others failed at once, without a render
    assert max(latencies) < limit / 2, latencies
