"""Tenant API views: the caller's tenant, admin login, API keys."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from herald.api import page_response, validated
from herald.errors import ApiError
from tenants.models import Tenant
from tenants.permissions import IsAdmin, IsServer
from tenants.selectors import api_key_list
from tenants.serializers import (
    ApiKeyCreateSerializer,
    LoginSerializer,
    RefreshSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    api_key_payload,
)
from tenants.services import api_key_create, api_key_revoke, tenant_update
from tenants.tokens import TokenRejected, admin_refresh_claims, admin_token_pair


def _host_tenant(request: Request) -> Tenant:
    """The tenant of a tenant host; login and refresh happen there, not on the platform host."""
    credential_free_tenant = request.tenant if request.credential is None else None
    if credential_free_tenant is None:
        raise ApiError(
            400,
            "invalid",
            f"Log in on your tenant host (<slug>.{settings.PLATFORM_HOST}), with no bearer token.",
        )
    return credential_free_tenant


class TenantApi(APIView):
    """The caller's tenant, as fixed by its credential (and host)."""

    def get_permissions(self) -> list[Any]:
        return [IsAdmin()] if self.request.method == "PATCH" else [IsServer()]

    @extend_schema(responses=TenantSerializer, operation_id="tenant_retrieve")
    def get(self, request: Request) -> Response:
        return Response(TenantSerializer(request.tenant).data)

    @extend_schema(
        request=TenantUpdateSerializer, responses=TenantSerializer, operation_id="tenant_update"
    )
    def patch(self, request: Request) -> Response:
        tenant = tenant_update(
            tenant=request.tenant, fields=validated(TenantUpdateSerializer, request.data)
        )
        return Response(TenantSerializer(tenant).data)


class AuthTokenApi(APIView):
    """Admin login on the tenant host: email and password for an access/refresh token pair."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_scope = "login"

    @extend_schema(
        request=LoginSerializer, responses=docs.TOKEN_PAIR, auth=[], operation_id="auth_token"
    )
    def post(self, request: Request) -> Response:
        tenant = _host_tenant(request)
        credentials = validated(LoginSerializer, request.data)
        user = authenticate(
            request._request,
            username=credentials["email"].strip().lower(),
            password=credentials["password"],
        )
        if user is None:
            raise ApiError(401, "unauthenticated", "Invalid email or password.")
        return Response(admin_token_pair(tenant=tenant, user_pk=user.pk))


class AuthTokenRefreshApi(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_scope = "login"

    @extend_schema(
        request=RefreshSerializer, responses=docs.ACCESS_TOKEN, auth=[], operation_id="auth_refresh"
    )
    def post(self, request: Request) -> Response:
        tenant = _host_tenant(request)
        refresh = validated(RefreshSerializer, request.data)["refresh"]
        try:
            token, user_pk = admin_refresh_claims(tenant=tenant, refresh=refresh)
        except TokenRejected as exc:
            raise ApiError(401, "unauthenticated", str(exc)) from exc
        if not get_user_model().objects.filter(pk=user_pk, is_active=True).exists():
            raise ApiError(401, "unauthenticated", "This admin no longer exists or is inactive.")
        return Response({"access": str(token.access_token)})


class ApiKeysApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(
        parameters=docs.PAGE_PARAMETERS,
        responses=docs.page_of(docs.API_KEY),
        operation_id="api_keys_list",
    )
    def get(self, request: Request) -> Response:
        return page_response(request, api_key_list(tenant=request.tenant), api_key_payload)

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: docs.API_KEY_CREATED},
        operation_id="api_keys_create",
    )
    def post(self, request: Request) -> Response:
        name = validated(ApiKeyCreateSerializer, request.data)["name"]
        created = api_key_create(tenant=request.tenant, name=name, created_by=request.user.email)
        return Response(
            {**api_key_payload(created.api_key), "key": created.plaintext},
            status=status.HTTP_201_CREATED,
        )


class ApiKeyDetailApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={204: None}, operation_id="api_keys_revoke")
    def delete(self, request: Request, key_id: int) -> Response:
        api_key = api_key_list(tenant=request.tenant).filter(pk=key_id).first()
        if api_key is None:
            raise ApiError(404, "not_found", "No such API key.")
        api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)
