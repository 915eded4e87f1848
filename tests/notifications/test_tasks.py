"""Scheduled sends are released by the real Celery worker, in each tenant's own schema."""

from __future__ import annotations

import uuid
from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import tenant_context

from notifications.models import EndUser, Notification, Send
from notifications.services.sending import SendInput, notification_send
from notifications.services.users import RecipientInput
from notifications.tasks import release_due_sends
from tenants.due import due_at
from tests.support.processes import running_worker


def test_worker_releases_due_scheduled_sends_in_each_tenant(committed, world):
    user = f"sched-{uuid.uuid4().hex[:8]}"
    sends = {}
    for tenant in (world.tenant_a, world.tenant_b):
        with tenant_context(tenant):
            outcome = notification_send(
                tenant=tenant,
                request=SendInput(
                    type="reminder",
                    recipients=[RecipientInput(external_id=user)],
                    message=f"for {tenant.slug}",
                    send_at=timezone.now() + timedelta(hours=1),
                ),
                fingerprint="",
                idempotency_key=None,
                actor="test",
            )
            assert outcome.response["status"] == "scheduled"
            Send.objects.filter(pk=outcome.response["id"]).update(
                send_at=timezone.now() - timedelta(seconds=1)  # its time has come
            )
            due_at(tenant_id=tenant.pk, kind="send", when=timezone.now())
            sends[tenant.slug] = outcome.response["id"]

    queue = f"test-release-{uuid.uuid4().hex[:8]}"
    try:
        with running_worker(queue):
            assert release_due_sends.apply_async(queue=queue).get(timeout=60) >= 2

        for tenant in (world.tenant_a, world.tenant_b):
            with tenant_context(tenant):
                send = Send.objects.get(pk=sends[tenant.slug])
                assert send.status == "accepted"
                rows = Notification.objects.filter(send=send)
                assert [n.message for n in rows] == [f"for {tenant.slug}"]
    finally:
        for tenant in (world.tenant_a, world.tenant_b):
            with tenant_context(tenant):
                Send.objects.filter(pk=sends.get(tenant.slug)).delete()
                EndUser.objects.filter(external_id=user).delete()
