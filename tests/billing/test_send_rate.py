"""The plan's email send rate holds across workers: a flood is smoothed, not refused."""

from __future__ import annotations

from contextlib import ExitStack

from django.conf import settings
from django.db.models import Max, Min
from django_tenants.utils import tenant_context

from notifications.models import Delivery
from tests.billing.test_quotas import plan_with
from tests.support.personas import committed_tenant
from tests.support.processes import running_worker, wait_until
from tests.support.smtp import smtp_sink


def test_two_workers_together_keep_to_the_plans_email_rate(committed):
    tenant, api = committed_tenant(committed, "rated", "Rated")
    plan = plan_with(tenant)
    plan.email_send_rate_per_second = 5
    plan.save()
    recipients = [{"id": f"r{n}", "email": f"r{n}@example.com"} for n in range(20)]
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with smtp_sink() as sink, ExitStack() as workers:
        for _ in range(2):
            workers.enter_context(running_worker(queue, EMAIL_URL=sink.url))
        response = api.post(
            "/api/v1/notifications",
            {"type": "bulk", "recipients": recipients, "message": "m", "channels": ["email"]},
        )
        assert response.status_code == 202
        wait_until(
            lambda: sum(len(sink.to(f"r{n}@example.com")) for n in range(20)) == 20,
            timeout=60,
            what="all 20 emails",
        )

    with tenant_context(tenant):
        span = Delivery.objects.aggregate(first=Min("sent_at"), last=Max("sent_at"))
        assert set(Delivery.objects.values_list("status", flat=True)) == {"sent"}
    seconds = (span["last"] - span["first"]).total_seconds()
    # 5 at once (one second of tokens), then 5 per second: the last 15 need 3 s at least
    assert seconds >= 2.5, f"20 emails in {seconds:.2f} s at 5/s"


def test_two_workers_racing_for_the_last_emails_of_the_quota_never_overshoot(committed):
    tenant, api = committed_tenant(committed, "racing-mail", "Racing Mail")
    plan_with(tenant, emails=5)
    recipients = [{"id": f"q{n}", "email": f"q{n}@example.com"} for n in range(12)]
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with smtp_sink() as sink, ExitStack() as workers:
        for _ in range(2):
            workers.enter_context(
                running_worker(queue, EMAIL_URL=sink.url, DELIVERY_BATCH_SIZE="3")
            )  # small batches: both workers' turns run side by side
        response = api.post(
            "/api/v1/notifications",
            {"type": "bulk", "recipients": recipients, "message": "m", "channels": ["email"]},
        )
        assert response.status_code == 202

        def settled() -> list[str] | None:
            with tenant_context(tenant):
                statuses = list(Delivery.objects.values_list("status", flat=True))
            return statuses if "queued" not in statuses else None

        statuses = wait_until(settled, timeout=60, what="every delivery settled")
    assert sorted(statuses) == ["sent"] * 5 + ["suppressed_quota"] * 7
    ours = [m for n in range(12) for m in sink.to(f"q{n}@example.com")]  # the sink is shared
    assert len(ours) == 5
