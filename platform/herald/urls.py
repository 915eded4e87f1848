"""URLs on tenant hosts (and, through urls_public, on the platform host)."""

from django.urls import include, path, re_path

from herald import health
from herald.errors import handler404 as api_not_found
from notifications.views import unsubscribe

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("unsubscribe/<str:token>", unsubscribe, name="unsubscribe"),
    path("api/v1/", include("tenants.urls")),
    path("api/", include("api_docs.urls")),
    # Unknown API paths answer in the contract's JSON even when DEBUG shows HTML 404 pages.
    re_path(r"^api/", api_not_found),
]

handler400 = "herald.errors.handler400"
handler403 = "herald.errors.handler403"
handler404 = "herald.errors.handler404"
handler500 = "herald.errors.handler500"
