"""A poison row never jams a queue: what cannot be sent fails alone, the rest of its batch goes
out, and no row is claimed beyond its attempt limit. A real worker, a real SMTP sink."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from notifications.models import Delivery, DigestBatch, EndUser
from notifications.services.turns import turns_request
from tests.notifications.email_support import (
    QUEUE,
    close_now,
    deliveries,
    digest_type,
    email_type,
    send,
    settled,
    unique,
)
from tests.support.processes import running_worker, wait_until
from tests.support.smtp import smtp_sink

INJECTION = "\r\nBcc: victim@evil.example"


def stored_user(tenant, *, name: str = "", email: str = "") -> str:
    """A user written straight to the table, as data stored before input was checked."""
    external_id = unique("old")
    with tenant_context(tenant):
        EndUser.objects.create(external_id=external_id, name=name, email=email)
    return external_id


def test_stored_names_with_line_breaks_neither_jam_the_batch_nor_inject_headers(alpha, world):
    key = email_type(alpha, email_subject="Hello {{ user.name }}")
    bad_name_to = f"{unique('bob')}@example.com"
    bad_name = stored_user(world.tenant_a, name=f"Bob{INJECTION}", email=bad_name_to)
    bad_address = stored_user(world.tenant_a, name="Eve", email=f"eve{INJECTION}@example.com")
    fine = [f"{unique('fine')}@example.com" for _ in range(2)]
    recipients = [bad_name, bad_address, *({"id": unique("u"), "email": a} for a in fine)]

    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        send_id = send(alpha, key, recipients, channels=["email"])
        rows = wait_until(lambda: settled(alpha, send_id, 4), timeout=30, what="all settled")

    by_user = {row["recipient"]: row for row in rows}
    assert [by_user[r["id"]]["status"] for r in recipients[2:]] == ["sent", "sent"]
    assert [len(sink.to(address)) for address in fine] == [1, 1]
    # The stored name is cleaned: one line, in the To header and the rendered subject.
    assert by_user[bad_name]["status"] == "sent"
    [message] = sink.to(bad_name_to)
    [to] = message["To"].addresses
    assert (to.display_name, to.addr_spec) == ("Bob Bcc: victim@evil.example", bad_name_to)
    assert message["Subject"] == "Hello Bob Bcc: victim@evil.example"
    assert message["Bcc"] is None
    # An address nothing can clean fails alone, with the reason, after one attempt.
    assert by_user[bad_address]["status"] == "failed"
    assert "Could not send: ValueError" in by_user[bad_address]["last_error"]
    assert all(row["attempts"] == 1 for row in rows)
    # Nothing was addressed to the address in the injected header. (The sink may also get mail
    # that earlier tests left queued for the shared tenant, to its admin say: not this send's.)
    addresses = [a.addr_spec for m in sink.received() for a in m["To"].addresses]
    assert not [a for a in addresses if a.endswith("@evil.example")]
    ours = {bad_name_to, *fine}
    assert sorted(sink.addressed(ours)) == sorted(ours)


def test_a_sender_name_stored_with_a_line_break_does_not_stop_the_tenants_email(alpha, world):
    from tenants.models import Tenant

    key = email_type(alpha)
    address = f"{unique('to')}@example.com"
    tenant = world.tenant_a
    before = Tenant.objects.get(pk=tenant.pk).sender_name
    Tenant.objects.filter(pk=tenant.pk).update(sender_name=f"Alpha{INJECTION}")
    try:
        with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
            send_id = send(alpha, key, [{"id": unique("u"), "email": address}])
            [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")
    finally:
        Tenant.objects.filter(pk=tenant.pk).update(sender_name=before)
    assert row["status"] == "sent"
    [message] = sink.to(address)
    [sender] = message["From"].addresses
    assert sender.display_name == "Alpha Bcc: victim@evil.example"
    assert message["Bcc"] is None


def test_rows_that_used_up_their_attempts_fail_instead_of_being_claimed_again(alpha, world):
    """A delivery and a digest whose workers died with them every time (attempts at the limit,
    lease run out) end ``failed``; their attempts never exceed the limit."""
    limit = settings.DELIVERY_MAX_ATTEMPTS
    past = timezone.now() - timedelta(seconds=1)
    single_to = f"{unique('one')}@example.com"
    single = send(alpha, email_type(alpha), [{"id": unique("u"), "email": single_to}])
    digest_user, digest_to = unique("u"), f"{unique('dg')}@example.com"
    digest_send = send(alpha, digest_type(alpha), [{"id": digest_user, "email": digest_to}])
    close_now(world.tenant_a)
    with tenant_context(world.tenant_a):
        Delivery.objects.filter(send_id=single).update(attempts=limit, locked_until=past)
        batch = DigestBatch.objects.get(recipient__external_id=digest_user, status="open")
        DigestBatch.objects.filter(pk=batch.pk).update(
            status="sending", attempts=limit, locked_until=past
        )
        Delivery.objects.filter(send_id=digest_send).update(batch=batch)

    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        turns_request(tenant_id=world.tenant_a.pk)  # what the sweep and beat would do
        [row] = wait_until(lambda: settled(alpha, single, 1), timeout=30, what="given up")
        [item] = wait_until(lambda: settled(alpha, digest_send, 1), timeout=30, what="digest")

    assert (row["status"], row["attempts"]) == ("failed", limit)
    assert row["last_error"].startswith(f"Gave up after {limit} attempts")
    assert (item["status"], item["attempts"]) == ("failed", limit)
    assert item["last_error"].startswith(f"Gave up after {limit} attempts")
    with tenant_context(world.tenant_a):
        assert DigestBatch.objects.get(pk=batch.pk).status == "failed"
    assert sink.to(single_to) == []
    assert sink.to(digest_to) == []
    assert [r["status"] for r in deliveries(alpha, single)] == ["failed"]
