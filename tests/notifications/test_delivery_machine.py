"""The delivery state machine's shared behaviour, through a channel registered for the test:
what its transport raises decides sent, retry with backoff, failed, suppressed or given up; the
opt-out is checked again just before delivering. And the email channel's SMTP errors, against a
real SMTP server (aiosmtpd)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from django_tenants.utils import tenant_context

from billing_stub.limits import Limits
from notifications.channels import registry
from notifications.channels.base import Suppressed, TransportError
from notifications.channels.names import CHANNEL_CHOICES, CHANNELS
from notifications.models import (
    Delivery,
    DigestBatch,
    EndUser,
    NotificationType,
    Preference,
    Send,
)
from notifications.services.deliveries import (
    deliveries_deliver,
    deliveries_enqueue,
    deliveries_pending,
    deliveries_write,
)
from notifications.services.digests import digests_flush_due
from notifications.services.sending import SendInput, notification_send
from notifications.services.users import RecipientInput
from tenants.models import Tenant
from tests.support.smtp import smtp_sink

FAKE = "test_fake"


class FakeChannel:
    """A queued channel whose transport raises what the test says, per recipient."""

    name = FAKE
    queued = True
    usage_kind = None

    def __init__(self) -> None:
        self.raises: dict[str, Exception] = {}
        self.delivered: list[str] = []

    def fan_out(
        self,
        *,
        tenant: Tenant,
        send: Send,
        user_ids: list[int],
        now: datetime,
        limits: Limits,
        fresh: Collection[int] = (),
        users_locked: bool = False,
    ) -> int:
        rows = deliveries_write(
            send=send, channel=FAKE, user_ids=user_ids, now=now, status=Delivery.Status.QUEUED
        )
        queued = sum(status == Delivery.Status.QUEUED for _id, status, _user in rows)
        deliveries_enqueue(tenant=tenant, count=queued, now=now)
        return queued

    def budget(self, *, tenant: Tenant, wanted: int) -> tuple[int, float]:
        return wanted, 0.0

    def unused(self, *, tenant: Tenant, count: int) -> None:
        pass

    @contextmanager
    def sender(self, *, tenant: Tenant) -> Iterator[FakeChannel]:
        yield self

    def deliver(self, delivery: Delivery) -> None:
        user = delivery.recipient.external_id
        if user in self.raises:
            raise self.raises[user]
        self.delivered.append(user)


@pytest.fixture
def fake() -> Iterator[FakeChannel]:
    with registry.registered(FakeChannel()) as channel:
        yield channel


def send_to(
    tenant: Tenant, users: list[str], channels: list[str], key: str = "", **type_fields
) -> int:
    """A send of a new type (or of type ``key``) to ``users``."""
    if not key:
        key = f"machine-{uuid.uuid4().hex[:8]}"
        NotificationType.objects.create(key=key, name=key, channels=channels, **type_fields)
    outcome = notification_send(
        tenant=tenant,
        request=SendInput(
            type=key, recipients=[RecipientInput(external_id=u) for u in users], message="m"
        ),
        fingerprint="",
        idempotency_key=None,
        actor="test",
    )
    return outcome.response["id"]


def rows(send_id: int) -> dict[str, Delivery]:
    found = Delivery.objects.filter(send_id=send_id).select_related("recipient")
    return {d.recipient.external_id: d for d in found}


def deliver(tenant: Tenant) -> int:
    return deliveries_deliver(tenant=Tenant.objects.get(pk=tenant.pk)).claimed


def come_due(send_id: int) -> None:
    """The retries' backoff has passed."""
    Delivery.objects.filter(send_id=send_id, status="queued").update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )


def test_the_registry_serves_exactly_the_named_channels_in_order():
    assert [c.name for c in registry.channels()] == list(CHANNELS)
    assert [name for name, _label in CHANNEL_CHOICES] == list(CHANNELS)
    assert [c.name for c in registry.queued_channels()] == ["email", "push"]


def test_what_the_transport_raises_decides_each_rows_outcome(db, world, fake):
    tenant = world.tenant_a
    fake.raises = {
        "flaky": TransportError("451 later"),
        "gone": TransportError("550 no such user", permanent=True),
        "over": Suppressed("The quota is used up."),
        "odd": ValueError("a header it cannot encode"),
    }
    with tenant_context(tenant):
        send_id = send_to(tenant, ["fine", "flaky", "gone", "over", "odd"], [FAKE])
        assert deliver(tenant) == 5
        by_user = rows(send_id)

    assert fake.delivered == ["fine"]
    assert (by_user["fine"].status, by_user["fine"].attempts) == ("sent", 1)
    assert by_user["fine"].sent_at is not None
    assert (by_user["gone"].status, by_user["gone"].last_error) == ("failed", "550 no such user")
    assert by_user["over"].status == "suppressed_quota"
    assert by_user["odd"].status == "failed"
    assert by_user["odd"].last_error.startswith("Could not send: ValueError")
    # A transient error waits out its backoff in the row, still queued.
    flaky = by_user["flaky"]
    assert (flaky.status, flaky.attempts, flaky.last_error) == ("queued", 1, "451 later")
    wait = (flaky.locked_until - flaky.updated_at).total_seconds()
    assert wait == pytest.approx(django_settings.DELIVERY_RETRY_BASE_SECONDS, abs=1)
    with tenant_context(tenant):
        assert deliveries_pending().ready is False
        assert deliver(tenant) == 0  # not due yet


def test_a_transient_error_is_retried_until_the_attempts_run_out(db, world, fake):
    tenant = world.tenant_a
    limit = django_settings.DELIVERY_MAX_ATTEMPTS
    fake.raises = {"flaky": TransportError("451 later")}
    with tenant_context(tenant):
        send_id = send_to(tenant, ["flaky"], [FAKE])
        for _ in range(limit):
            assert deliver(tenant) == 1
            come_due(send_id)
        row = rows(send_id)["flaky"]
        assert deliver(tenant) == 0

    assert (row.status, row.attempts) == ("failed", limit)
    assert row.last_error == f"Gave up after {limit} attempts. 451 later"


def test_a_transient_error_then_success_is_sent(db, world, fake):
    tenant = world.tenant_a
    fake.raises = {"flaky": TransportError("451 later")}
    with tenant_context(tenant):
        send_id = send_to(tenant, ["flaky"], ["in_app", FAKE])
        deliver(tenant)
        del fake.raises["flaky"]
        come_due(send_id)
        assert deliver(tenant) == 1
        row = rows(send_id)["flaky"]

    assert (row.status, row.attempts, row.last_error) == ("sent", 2, "")
    assert row.notification_id is not None  # linked to the in-app copy fanned out first


def test_a_row_whose_workers_all_died_is_given_up_without_delivering(db, world, fake):
    tenant = world.tenant_a
    limit = django_settings.DELIVERY_MAX_ATTEMPTS
    with tenant_context(tenant):
        send_id = send_to(tenant, ["stuck"], [FAKE])
        Delivery.objects.filter(send_id=send_id).update(
            attempts=limit, locked_until=timezone.now() - timedelta(seconds=1)
        )
        assert deliver(tenant) == 0
        row = rows(send_id)["stuck"]

    assert fake.delivered == []
    assert (row.status, row.attempts) == ("failed", limit)
    assert row.last_error.startswith(f"Gave up after {limit} attempts; the last one never")


def test_the_opt_out_is_checked_at_fan_out_and_again_before_delivering(db, world, fake):
    tenant = world.tenant_a
    with tenant_context(tenant):
        EndUser.objects.create(external_id="off-before")
        EndUser.objects.create(external_id="off-after")
        Preference.objects.create(
            user=EndUser.objects.get(external_id="off-before"), channel=FAKE, enabled=False
        )
        send_id = send_to(tenant, ["off-before", "off-after", "on"], [FAKE])
        assert rows(send_id)["off-before"].status == "skipped_preference"
        Preference.objects.create(
            user=EndUser.objects.get(external_id="off-after"), channel=FAKE, enabled=False
        )
        assert deliver(tenant) == 2
        by_user = rows(send_id)

    assert fake.delivered == ["on"]
    assert by_user["off-after"].status == "skipped_preference"


def test_a_critical_type_ignores_the_opt_out(db, world, fake):
    tenant = world.tenant_a
    with tenant_context(tenant):
        user = EndUser.objects.create(external_id="off")
        Preference.objects.create(user=user, channel=FAKE, enabled=False)
        send_id = send_to(tenant, ["off"], [FAKE], critical=True)
        deliver(tenant)
        assert rows(send_id)["off"].status == "sent"


@pytest.fixture
def smtp(settings) -> Iterator:
    """A real SMTP server (aiosmtpd) as this process's email backend."""
    with smtp_sink() as sink:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", sink.port
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        yield sink


def test_email_over_real_smtp_maps_5xx_to_failed_and_4xx_to_a_retry(db, world, smtp):
    tenant = world.tenant_a
    addresses = {"ok": "ok@example.com", "bounce": "bounce@example.com",
                 "greylist": f"greylist-{uuid.uuid4().hex[:6]}@example.com"}  # fmt: skip
    with tenant_context(tenant):
        for user, address in addresses.items():
            EndUser.objects.create(external_id=user, email=address)
        send_id = send_to(tenant, list(addresses), ["email"])
        assert deliver(tenant) == 3
        by_user = rows(send_id)
        come_due(send_id)
        assert deliver(tenant) == 1  # the greylisted one, accepted the second time
        greylisted = rows(send_id)["greylist"]

    assert by_user["ok"].status == "sent"
    assert by_user["bounce"].status == "failed"
    assert by_user["bounce"].last_error.startswith("Recipient refused: 550")
    assert (by_user["greylist"].status, by_user["greylist"].attempts) == ("queued", 1)
    assert by_user["greylist"].last_error.startswith("Recipient refused: 451")
    assert (greylisted.status, greylisted.attempts) == ("sent", 2)
    assert [len(smtp.to(a)) for a in addresses.values()] == [1, 0, 1]


def test_a_digest_is_one_unit_of_the_machine_recorded_on_batch_and_items(db, world, smtp):
    """A greylisted digest waits out its backoff as a whole and goes out once, with every item;
    a bounced one fails, batch and items."""
    tenant = world.tenant_a
    addresses = {"grey": f"greylist-{uuid.uuid4().hex[:6]}@example.com",
                 "bounced": "bounce@example.com"}  # fmt: skip
    with tenant_context(tenant):
        for user, address in addresses.items():
            EndUser.objects.create(external_id=user, email=address)
        first = send_to(tenant, list(addresses), ["email"], digest_window_seconds=600)
        send_to(tenant, list(addresses), [], key=Send.objects.get(pk=first).type.key)
        DigestBatch.objects.filter(recipient__external_id__in=list(addresses)).update(
            closes_at=timezone.now()
        )
        assert digests_flush_due(tenant=tenant, limit=10) == 2
        waiting = DigestBatch.objects.get(recipient__external_id="grey")
        DigestBatch.objects.filter(pk=waiting.pk).update(
            locked_until=timezone.now() - timedelta(seconds=1)
        )
        assert digests_flush_due(tenant=tenant, limit=10) == 1
        batches = {b.recipient.external_id: b for b in DigestBatch.objects.filter(
            recipient__external_id__in=list(addresses)).select_related("recipient")}  # fmt: skip
        items = {
            user: sorted(
                Delivery.objects.filter(recipient__external_id=user).values_list(
                    "status", "attempts"
                )
            )
            for user in addresses
        }

    assert (waiting.status, waiting.attempts) == ("sending", 1)
    assert waiting.last_error.startswith("Recipient refused: 451")
    assert (batches["grey"].status, batches["grey"].attempts) == ("sent", 2)
    assert items["grey"] == [("sent", 2), ("sent", 2)]
    assert batches["bounced"].status == "failed"
    assert items["bounced"] == [("failed", 1), ("failed", 1)]
    [digest] = smtp.to(addresses["grey"])
    assert digest["Subject"].startswith("2 new notifications")
