"""The due-work index: periodic tasks visit only tenants with something due."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from django_tenants.utils import tenant_context

from notifications.services.sending import SendInput, notification_send, sends_next_due
from notifications.services.users import RecipientInput
from tenants.due import due_at, due_fold, due_hint, due_rebuild, due_recompute, due_tenants
from tenants.models import DueHint, DueWork
from tests.support.personas import start_empty


@pytest.fixture(autouse=True)
def _nothing_due(db):
    """What tests that ran the real beat and workers left due is not this module's."""
    start_empty(DueWork, DueHint)


def send_later(tenant, send_at, external_id="due-1"):
    with tenant_context(tenant):
        notification_send(
            tenant=tenant,
            request=SendInput(
                type="later",
                recipients=[RecipientInput(external_id=external_id)],
                message="m",
                send_at=send_at,
            ),
            fingerprint="",
            idempotency_key=None,
            actor="test",
        )


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


def test_the_work_and_its_due_time_commit_together(db, world):
    tenant = world.tenant_a
    send_at = timezone.now() + timedelta(minutes=30)

    def failing_send() -> None:
        with transaction.atomic():
            send_later(tenant, send_at)
            assert DueHint.objects.filter(tenant_id=tenant.pk, kind="send").exists()
            raise RuntimeError("the send's transaction fails")

    with pytest.raises(RuntimeError):
        failing_send()
    assert not DueHint.objects.exists()  # nothing due for work that never was

    send_later(tenant, send_at)
    assert not DueWork.objects.filter(tenant=tenant).exists()  # not before the next fold
    assert due_tenants(kind="send", now=send_at) == [tenant]  # which every scan starts with
    assert DueWork.objects.get(tenant=tenant, kind="send").due_at == send_at
    assert not DueHint.objects.exists()


def test_a_fold_keeps_the_earliest_time_and_drops_unknown_tenants(db, world):
    now = timezone.now()
    a, b = world.tenant_a, world.tenant_b
    due_at(tenant_id=a.pk, kind="digest", when=now + timedelta(hours=1))
    due_hint(tenant_id=a.pk, kind="digest", when=now + timedelta(hours=2))  # later: no change
    due_hint(tenant_id=a.pk, kind="email", when=now + timedelta(minutes=5))
    due_hint(tenant_id=a.pk, kind="email", when=now + timedelta(minutes=1))
    due_hint(tenant_id=b.pk, kind="digest", when=now + timedelta(minutes=30))
    due_hint(tenant_id=10**12, kind="email", when=now)  # a tenant deleted since
    assert due_fold() == 3
    assert {(row.tenant_id, row.kind): row.due_at for row in DueWork.objects.all()} == {
        (a.pk, "digest"): now + timedelta(hours=1),
        (a.pk, "email"): now + timedelta(minutes=1),
        (b.pk, "digest"): now + timedelta(minutes=30),
    }
    assert not DueHint.objects.exists()
    assert due_fold() == 0


def test_recompute_reads_the_tenants_own_data_and_rebuild_restores_a_lost_row(db, world):
    tenant = world.tenant_a
    send_at = timezone.now() + timedelta(minutes=30)
    send_later(tenant, send_at)
    DueHint.objects.all().delete()  # as if the index were restored from an older backup
    assert due_rebuild(kind="send", next_due=sends_next_due) >= 1
    assert DueWork.objects.get(tenant=tenant, kind="send").due_at == send_at

    DueWork.objects.all().delete()
    out = StringIO()
    call_command("due_work_rebuild", stdout=out)  # the operator's command, every kind
    assert "send: 1 tenants with work pending" in out.getvalue()
    assert DueWork.objects.get(tenant=tenant, kind="send").due_at == send_at

    due_recompute(tenant=tenant, kind="send", next_due=lambda: None)  # nothing left
    assert not DueWork.objects.filter(tenant=tenant, kind="send").exists()
