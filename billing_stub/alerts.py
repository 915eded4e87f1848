"""Quota alerts: the tenant's admins get one email when a quota reaches 80%, and one at 100%,
per billing period.

``quota_alert_check`` runs right after a reservation (it knows the new count) and hands a
crossing to a task; a Redis flag in the cache's key space keeps later sends from asking again.
The task records the alert under a unique constraint first and mails only if it inserted the
row, so retries and racing workers send it once.
"""

from __future__ import annotations

import logging
from datetime import date

from celery import current_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.mail import send_mail
from django.db import IntegrityError, transaction

from billing_stub.limits import limits_for
from billing_stub.models import EMAILS, NOTIFICATIONS, WEBHOOKS, QuotaAlert
from tenants.entry import in_tenant
from tenants.models import Tenant

logger = logging.getLogger(__name__)

THRESHOLDS = (80, 100)
ALERT_TASK = "billing.quota_alert"
LABELS = {NOTIFICATIONS: "notification", EMAILS: "email", WEBHOOKS: "webhook"}


def quota_alert_check(*, tenant_id: int, kind: str, used: int, limit: int, period: date) -> None:
    """Queue an alert for each threshold ``used`` has reached (once per period). Never raises."""
    if limit <= 0:
        return
    for threshold in THRESHOLDS:
        if used * 100 < threshold * limit:
            continue
        flag = f"quota-alert:{tenant_id}:{kind}:{period}:{threshold}"
        try:
            if not cache.add(flag, 1, 40 * 86400):
                continue  # already queued this period
            current_app.send_task(
                ALERT_TASK, args=(tenant_id, kind, period.isoformat(), threshold), retry=False
            )
        except Exception:  # an alert must never fail a send; the next send asks again
            cache.delete(flag)
            logger.warning("Quota alert for tenant %s not queued", tenant_id)


def quota_alert_send(*, tenant_id: int, kind: str, period: date, threshold: int) -> bool:
    """Record the alert and mail the tenant's admins, unless it was sent already. Returns
    whether this call sent it."""
    tenant = Tenant.objects.select_related("plan").filter(pk=tenant_id).first()
    if tenant is None:
        return False
    try:
        with transaction.atomic():
            QuotaAlert.objects.create(
                tenant=tenant, period_start=period, kind=kind, threshold=threshold
            )
            with in_tenant(tenant):
                admins = list(
                    get_user_model()
                    .objects.filter(is_active=True)
                    .exclude(email="")
                    .values_list("email", flat=True)
                )
            label = LABELS.get(kind, kind)
            plan, limits = tenant.plan, limits_for(tenant)
            limit = {
                NOTIFICATIONS: limits.monthly_notification_quota,
                EMAILS: limits.monthly_email_quota,
                WEBHOOKS: limits.monthly_webhook_quota,
            }[kind]
            send_mail(
                subject=f"{tenant.name}: {threshold}% of your monthly {label} quota used",
                message=(
                    f"{tenant.name} has used {threshold}% of the {limit:,} {label}s its "
                    f"{plan.name} plan includes for the month that started {period}.\n"
                    + (
                        "Further sends are refused until the next month or a plan upgrade.\n"
                        if threshold >= 100
                        else ""
                    )
                ),
                from_email=settings.DEFAULT_FROM_EMAIL,
                recipient_list=admins,
            )
    except IntegrityError:
        return False  # sent already (another worker, or a retry)
    return True
