from django.urls import include, path

from billing_stub.apis import UsageApi, UsageReportApi
from tenants import apis

urlpatterns = [
    path("tenant", apis.TenantApi.as_view(), name="tenant"),
    path("auth/token", apis.AuthTokenApi.as_view(), name="auth-token"),
    path("auth/token/refresh", apis.AuthTokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("api-keys", apis.ApiKeysApi.as_view(), name="api-keys"),
    path("api-keys/<int:key_id>", apis.ApiKeyDetailApi.as_view(), name="api-key-detail"),
    path("signup", apis.SignupApi.as_view(), name="api-signup"),
    path("signup/slug", apis.SlugAvailabilityApi.as_view(), name="api-signup-slug"),
    path("usage", UsageApi.as_view(), name="usage"),
    path("usage/report", UsageReportApi.as_view(), name="usage-report"),
    path("", include("notifications.urls")),
]
