"""Quota alerts reach the tenant's admins once at 80% and once at 100%, through a real worker."""

from __future__ import annotations

from django.conf import settings

from billing_stub.models import QuotaAlert
from tests.billing.test_quotas import plan_with, send
from tests.support.personas import committed_tenant
from tests.support.processes import running_worker, wait_until
from tests.support.smtp import smtp_sink


def test_admins_are_mailed_once_at_80_and_once_at_100_percent(committed):
    tenant, api = committed_tenant(committed, "alerting", "Alerting Co")
    plan_with(tenant, notifications=10)
    with (
        smtp_sink() as sink,
        running_worker(settings.CELERY_TASK_DEFAULT_QUEUE, EMAIL_URL=sink.url),
    ):
        assert send(api, 7).status_code == 202  # 70%: nothing yet
        assert send(api, 1).status_code == 202  # 80%
        wait_until(lambda: sink.to("owner@alerting.example.com"), timeout=30, what="80% alert")
        assert send(api, 2).status_code == 202  # 100%
        assert send(api, 1).status_code == 429  # refused: no new alert
        assert send(api, 1).status_code == 429
        wait_until(
            lambda: len(sink.to("owner@alerting.example.com")) >= 2, timeout=30, what="100% alert"
        )
        wait_until(lambda: QuotaAlert.objects.filter(tenant=tenant).count() == 2)

    subjects = sorted(m["Subject"] for m in sink.to("owner@alerting.example.com"))
    assert subjects == [
        "Alerting Co: 100% of your monthly notification quota used",
        "Alerting Co: 80% of your monthly notification quota used",
    ]
