"""Plan limits are the services' rule: read once per send, enforced whoever calls (the API, the
dashboard, the widget demo), and refused with the same domain error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import tenant_context

import billing_stub.limits
from herald.domain import LimitExceeded, NotInPlan
from notifications.channels.email import channel as email_channel
from notifications.models import NotificationType
from notifications.services import sending, types
from notifications.services.sending import SendInput, notification_send, sends_release_due
from notifications.services.types import type_upsert
from notifications.services.users import RecipientInput
from tests.billing.test_limits import override
from tests.dashboard.content_helpers import dashboard, put_type, put_user


@pytest.fixture
def limits_reads(monkeypatch) -> list[int]:
    """Every read of a tenant's limits by the send and fan-out services."""
    reads: list[int] = []

    def counted(tenant):
        reads.append(tenant.pk)
        return billing_stub.limits.limits_for(tenant)

    for module in (sending, email_channel, types):
        monkeypatch.setattr(module, "limits_for", counted)
    return reads


def test_a_send_to_both_channels_reads_the_limits_once(alice_key, world, limits_reads):
    put_type(alice_key, "once.both", channels=["in_app", "email"], digest_window_seconds=3600)
    recipients = [{"id": f"once-{n}", "email": f"once{n}@example.com"} for n in range(3)]
    body = {"type": "once.both", "recipients": recipients, "message": "m"}
    limits_reads.clear()
    assert alice_key.post("/api/v1/notifications", body).status_code == 202
    assert limits_reads == [world.tenant_a.pk]


def test_a_release_reads_the_limits_once_for_its_batch(world, limits_reads, db):
    tenant = world.tenant_a
    with tenant_context(tenant):
        for n in range(3):
            notification_send(
                tenant=tenant,
                request=SendInput(
                    type="once.later",
                    recipients=[RecipientInput(external_id=f"later-{n}", email="l@example.com")],
                    message="m",
                    channels=["in_app", "email"],
                    send_at=timezone.now() + timedelta(hours=1),
                ),
                fingerprint="",
                idempotency_key=None,
                actor="test",
            )
        limits_reads.clear()
        assert sends_release_due(tenant=tenant, now=timezone.now() + timedelta(hours=2)) == 3
    assert limits_reads == [tenant.pk]


def test_the_send_service_refuses_more_recipients_than_the_plan_allows(world, db):
    tenant = override(world.tenant_a, max_recipients_per_send=1)
    with tenant_context(tenant), pytest.raises(LimitExceeded) as refused:
        notification_send(
            tenant=tenant,
            request=SendInput(
                type="limited",
                recipients=[RecipientInput(external_id="a"), RecipientInput(external_id="b")],
                message="m",
            ),
            fingerprint="",
            idempotency_key=None,
            actor="test",
        )
    assert refused.value.details == {
        "recipients": ["Your plan allows at most 1 recipients per send."]
    }


def test_the_type_service_refuses_a_digest_window_the_plan_lacks(world, db):
    tenant = world.tenant_b  # the free plan: no digests
    with tenant_context(tenant):
        with pytest.raises(NotInPlan):
            type_upsert(tenant=tenant, key="no.digest", fields={"digest_window_seconds": 60})
        assert not NotificationType.objects.filter(key="no.digest").exists()
        created, _ = type_upsert(tenant=tenant, key="no.digest", fields={"name": "Fine"})
        assert created.digest_window_seconds is None


def test_the_api_answers_a_refused_digest_window_as_before(bob_key):
    response = bob_key.put("/api/v1/types/weekly.api", {"digest_window_seconds": 3600})
    assert response.status_code == 403
    assert response.json() == {
        "error": {
            "code": "forbidden",
            "message": "Your plan does not include digests.",
            "details": {"digest_window_seconds": ["Digests need a plan that includes them."]},
        }
    }


def test_the_dashboard_test_send_shows_the_recipients_limit_as_a_form_error(world, alice_key, db):
    put_type(alice_key, "form.limit")
    put_user(alice_key, "limit-user")
    override(world.tenant_a, max_recipients_per_send=0)
    alice = dashboard(world.tenant_a, world.alice.email)
    body = {"recipient": "limit-user", "type": "form.limit", "message": "m"}
    response = alice.post("/dashboard/notifications/test", {**body, "idempotency_key": "c" * 32})
    assert response.status_code == 400
    assert "Your plan allows at most 0 recipients per send." in response.content.decode()
