"""The due-work index: periodic tasks visit only tenants with something due."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from notifications.services.sending import SendInput, notification_send, sends_next_due
from notifications.services.users import RecipientInput
from tenants.due import due_at, due_rebuild, due_recompute, due_tenants
from tenants.models import DueWork


def test_due_times_only_move_earlier_from_outside(db, world):
    now = timezone.now()
    tenant = world.tenant_a
    due_at(tenant_id=tenant.pk, kind="send", when=now + timedelta(hours=2))
    due_at(tenant_id=tenant.pk, kind="send", when=now + timedelta(hours=1))
    due_at(tenant_id=tenant.pk, kind="send", when=now + timedelta(hours=3))
    row = DueWork.objects.get(tenant=tenant, kind="send")
    assert row.due_at == now + timedelta(hours=1)
    assert due_tenants(kind="send", now=now) == []
    assert due_tenants(kind="send", now=now + timedelta(hours=1)) == [tenant]
    assert due_tenants(kind="digest", now=now + timedelta(hours=1)) == []


def test_recompute_reads_the_tenants_own_data_and_rebuild_restores_a_lost_row(db, world):
    tenant = world.tenant_a
    send_at = timezone.now() + timedelta(minutes=30)
    with tenant_context(tenant):
        notification_send(
            tenant=tenant,
            request=SendInput(
                type="later",
                recipients=[RecipientInput(external_id="due-1")],
                message="m",
                send_at=send_at,
            ),
            fingerprint="",
            idempotency_key=None,
            actor="test",
        )
    DueWork.objects.filter(tenant=tenant).delete()  # as if the write after commit were lost
    assert due_rebuild(kind="send", next_due=sends_next_due) >= 1
    assert DueWork.objects.get(tenant=tenant, kind="send").due_at == send_at

    due_recompute(tenant=tenant, kind="send", next_due=lambda: None)  # nothing left
    assert not DueWork.objects.filter(tenant=tenant, kind="send").exists()
