from django.urls import path

from tenants.apis import TenantApi

urlpatterns = [
    path("tenant", TenantApi.as_view(), name="tenant"),
]
