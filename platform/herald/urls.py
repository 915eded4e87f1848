"""URLs on tenant hosts; ``urls_public`` serves the shared part on the platform host."""

from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from herald import health
from herald.errors import handler404 as api_not_found
from notifications.views import unsubscribe

# Served on every host: the API (a credential names the tenant on the platform host), its docs,
# the widget's script and the unsubscribe links of emails.
shared_urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("unsubscribe/<str:token>", unsubscribe, name="unsubscribe"),
    path("api/v1/", include("tenants.urls")),
    path("api/", include("api_docs.urls")),
    # Unknown API paths answer in the contract's JSON even when DEBUG shows HTML 404 pages, for
    # every method: the API takes no cookies, so a POST here is a 404, not a CSRF refusal.
    re_path(r"^api/", csrf_exempt(api_not_found)),
    path("widget/", include("widget.urls")),
]

urlpatterns = [
    *shared_urlpatterns,
    # Tenant hosts only: the tenant admins' dashboard.
    path("dashboard/", include("dashboard.urls")),
]

handler400 = "herald.errors.handler400"
handler403 = "herald.errors.handler403"
handler404 = "herald.errors.handler404"
handler500 = "herald.errors.handler500"
