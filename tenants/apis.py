from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tenants.serializers import TenantSerializer


class TenantApi(APIView):
    """The caller's tenant, as fixed by its credential (and host)."""

    @extend_schema(responses=TenantSerializer, operation_id="tenant_retrieve")
    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(request.tenant).data)
