"""``GET /api/v1/usage``: this billing period's metered usage against the plan."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from billing_stub.limits import limits_for
from billing_stub.metering import EMAILS, NOTIFICATIONS, period_of, usage_get
from billing_stub.reports import usage_report
from herald.errors import ApiError
from tenants.permissions import IsAdmin, IsServer


class UsageApi(APIView):
    permission_classes = [IsServer]

    @extend_schema(responses=docs.USAGE, operation_id="usage_retrieve")
    def get(self, request: Request) -> Response:
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
            }
        )


class UsageReportApi(APIView):
    """``GET /api/v1/usage/report?period=YYYY-MM`` (admin token): the invoice basis."""

    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "period", OpenApiTypes.STR, description="A billing month, YYYY-MM (default: now)."
            )
        ],
        responses=docs.USAGE_REPORT,
        operation_id="usage_report",
    )
    def get(self, request: Request) -> Response:
        raw = request.query_params.get("period")
        period = period_of()
        if raw is not None:
            match = re.fullmatch(r"(\d{4})-(\d{2})", raw)
            if not match or not 1 <= int(match.group(2)) <= 12:
                raise ApiError(
                    400, "invalid", "Invalid period.", {"period": ["A month as YYYY-MM."]}
                )
            year, month = int(match.group(1)), int(match.group(2))
            period = period_of(datetime(year, month, 1, tzinfo=UTC))
        return Response(usage_report(tenant=request.tenant, period=period))
