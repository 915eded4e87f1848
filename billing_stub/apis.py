"""``GET /api/v1/usage``: this billing period's metered usage against the plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from billing_stub.limits import limits_for
from billing_stub.metering import EMAILS, NOTIFICATIONS, WEBHOOKS, period_of, usage_get
from billing_stub.reports import usage_report
from herald.api import query_param
from herald.errors import ApiError
from tenants.permissions import IsAdmin, IsServer
from tenants.requests import TenantRequest


class UsageApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=docs.USAGE, operation_id="usage_retrieve")
    def get(self, request: TenantRequest) -> Response:
        tenant, period = request.tenant, period_of()
        limits = limits_for(tenant)
        return Response(
            {
                "plan": limits.plan,
                "period_start": period.start,
                "period_end": period.end,
                "notifications": {
                    "used": usage_get(tenant_id=tenant.pk, kind=NOTIFICATIONS, period=period),
                    "limit": limits.monthly_notification_quota,
                },
                "emails": {
                    "used": usage_get(tenant_id=tenant.pk, kind=EMAILS, period=period),
                    "limit": limits.monthly_email_quota,
                },
                "webhooks": {
                    "used": usage_get(tenant_id=tenant.pk, kind=WEBHOOKS, period=period),
                    "limit": limits.monthly_webhook_quota,
                },
            }
        )


# The last month a date can end is 9999-11: a period ends on the first day of the next month.
PERIOD_PATTERN = r"^(?!9999-12)[1-9][0-9]{3}-(0[1-9]|1[0-2])$"


class UsageReportApi(APIView):
    """``GET /api/v1/usage/report?period=YYYY-MM`` (admin token): the invoice basis."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "period",
                {"type": "string", "pattern": PERIOD_PATTERN},
                description="A billing month, YYYY-MM (default: now).",
            )
        ],
        responses=docs.USAGE_REPORT,
        operation_id="usage_report",
    )
    def get(self, request: TenantRequest) -> Response:
        raw = query_param(request, "period")
        period = period_of()
        if raw is not None:
            if not re.fullmatch(PERIOD_PATTERN, raw):
                raise ApiError(
                    400,
                    "invalid",
                    "Invalid period.",
                    {"period": ["A month as YYYY-MM, from 1000-01 to 9999-11."]},
                )
            year, month = int(raw[:4]), int(raw[5:])
            period = period_of(datetime(year, month, 1, tzinfo=UTC))
        return Response(usage_report(tenant=request.tenant, period=period))
