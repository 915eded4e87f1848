"""``GET /api/v1/usage``: this billing period's metered usage against the plan."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from billing_stub.limits import limits_for
from billing_stub.metering import EMAILS, NOTIFICATIONS, period_of, usage_get
from tenants.permissions import IsServer


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
