"""Tenant API views: the caller's tenant, admin login, API keys, self-serve sign-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from api_docs import docs
from herald.api import page_response, query_param, validated
from herald.errors import ApiError
from herald.ratelimits import measure
from tenants.models import Tenant
from tenants.permissions import IsAdmin, IsServer
from tenants.requests import AdminRequest, PlatformRequest, TenantRequest
from tenants.selectors import api_key_list
from tenants.serializers import (
    ApiKeyCreateSerializer,
    LoginSerializer,
    RefreshSerializer,
    SignupSerializer,
    TenantSerializer,
    TenantUpdateSerializer,
    api_key_payload,
    signup_payload,
)
from tenants.services import (
    api_key_create,
    api_key_revoke,
    signup_errors,
    slug_check,
    tenant_signup,
    tenant_update,
)
from tenants.tokens import TokenRejected, admin_refresh_claims, admin_token_pair


def _host_tenant(request: PlatformRequest) -> Tenant:
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
    def get(self, request: TenantRequest) -> Response:
        return Response(TenantSerializer(request.tenant).data)

    @extend_schema(
        request=TenantUpdateSerializer, responses=TenantSerializer, operation_id="tenant_update"
    )
    def patch(self, request: TenantRequest) -> Response:
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
    def post(self, request: PlatformRequest) -> Response:
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
    def post(self, request: PlatformRequest) -> Response:
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
    def get(self, request: TenantRequest) -> Response:
        return page_response(request, api_key_list(tenant=request.tenant), api_key_payload)

    @extend_schema(
        request=ApiKeyCreateSerializer,
        responses={201: docs.API_KEY_CREATED},
        operation_id="api_keys_create",
    )
    def post(self, request: AdminRequest) -> Response:
        name = validated(ApiKeyCreateSerializer, request.data)["name"]
        created = api_key_create(tenant=request.tenant, name=name, created_by=request.user.email)
        return Response(
            {**api_key_payload(created.api_key), "key": created.plaintext},
            status=status.HTTP_201_CREATED,
        )


class ApiKeyDetailApi(APIView):
    permission_classes = [IsAdmin]

    @extend_schema(responses={204: None}, operation_id="api_keys_revoke")
    def delete(self, request: TenantRequest, key_id: int) -> Response:
        api_key = api_key_list(tenant=request.tenant).filter(pk=key_id).first()
        if api_key is None:
            raise ApiError(404, "not_found", "No such API key.")
        api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


SIGNED_UP = inline_serializer(
    name="SignedUp",
    fields={
        "slug": serializers.CharField(),
        "domain": serializers.CharField(help_text="The tenant's host: the dashboard and the API."),
        "api_key": serializers.CharField(help_text="A secret API key. Shown once, never again."),
    },
)
SLUG_CHECKED = inline_serializer(
    name="SlugAvailability",
    fields={
        "slug": serializers.CharField(help_text="The slug as it would be used (lowercase)."),
        "available": serializers.BooleanField(),
        "errors": serializers.ListField(
            child=serializers.CharField(), help_text="Why it cannot be used; empty if available."
        ),
        "suggestion": serializers.CharField(
            allow_null=True, help_text="A free variant when the slug is taken or reserved."
        ),
    },
)
SIGNUP_EXAMPLE = OpenApiExample(
    "Sign up",
    request_only=True,
    value={
        "slug": "acme",
        "name": "Acme Inc.",
        "email": "ops@acme.example.com",
        "password": "a long pass phrase",
    },
)


def _platform_host_only(request: PlatformRequest) -> None:
    """Sign-up lives on the platform host; a tenant host has no such resource."""
    if not request.is_platform_host:
        raise ApiError(404, "not_found", "Sign up on the platform host, not a tenant's host.")


def signup_rate_limited(usage: Any) -> ApiError:
    minutes = max(1, round(usage.reset / 60))
    return ApiError(
        429,
        "rate_limited",
        f"Too many sign-ups from your network. Try again in {minutes} minute(s).",
        headers={"Retry-After": str(usage.reset)},
    )


class SignupApi(APIView):
    """Self-serve sign-up: a tenant on the free plan, its admin and its first API key."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=SignupSerializer,
        responses={201: SIGNED_UP},
        examples=[SIGNUP_EXAMPLE],
        auth=[],
        operation_id="signup",
        description=(
            "Platform host only (404 on a tenant host). Creates the tenant on the `free` plan with "
            "its `<slug>.<platform host>` domain, its admin (email and password, for the "
            "dashboard and `POST /api/v1/auth/token`) and a first secret API key, shown once. "
            "All or nothing: on any error nothing is created. Invalid fields: 400 with "
            "`details` naming each. At most 5 sign-ups per hour from one IP, besides the "
            "per-IP API rate: 429 with `Retry-After`."
        ),
    )
    def post(self, request: PlatformRequest) -> Response:
        _platform_host_only(request)
        fields = validated(SignupSerializer, request.data)
        errors = signup_errors(**fields)
        if errors:
            raise ApiError(400, "invalid", "The request is invalid; see details.", errors)
        usage = measure(request._request, scope="signup")  # only sign-ups that would go ahead
        if usage is not None:
            current = getattr(request._request, "rate_limit", None)
            if usage.limited or current is None or usage.remaining < current.remaining:
                request._request.rate_limit = usage  # the tighter window names the headers
            if usage.limited:
                raise signup_rate_limited(usage)
        # A concurrent sign-up that took the slug meanwhile raises ProvisioningError, a domain
        # error the exception handler answers like the checks above.
        signed_up = tenant_signup(**fields)
        return Response(
            signup_payload(
                slug=signed_up.tenant.slug, domain=signed_up.domain, api_key=signed_up.api_key
            ),
            status=status.HTTP_201_CREATED,
        )


MAX_SLUG_CHECK = 100  # longer than any slug; enough to answer "too long"


class SlugAvailabilityApi(APIView):
    """Whether a slug is free, for the sign-up page's live check."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_scope = "signup-check"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "slug",
                {"type": "string", "maxLength": MAX_SLUG_CHECK},
                required=True,
                description="To check.",
            )
        ],
        responses=SLUG_CHECKED,
        auth=[],
        operation_id="signup_slug_check",
        description="Platform host only. Limited to 60 checks a minute per IP.",
    )
    def get(self, request: PlatformRequest) -> Response:
        _platform_host_only(request)
        raw = query_param(request, "slug")
        if raw is None:
            raise ApiError(
                400, "invalid", "The request is invalid; see details.",
                {"slug": ["This parameter is required."]},
            )  # fmt: skip
        if len(raw) > MAX_SLUG_CHECK:
            raise ApiError(
                400, "invalid", "The request is invalid; see details.",
                {"slug": ["Use at most 40 characters."]},
            )  # fmt: skip
        checked = slug_check(raw)
        return Response(
            {
                "slug": checked.slug,
                "available": not checked.errors,
                "errors": checked.errors,
                "suggestion": checked.suggestion,
            }
        )
