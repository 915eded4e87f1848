"""URLs on the platform host: the shared API and docs, self-serve sign-up, the Django admin."""

from django.contrib import admin
from django.urls import include, path

from herald.metrics import metrics
from herald.urls import handler400, handler403, handler404, handler500, shared_urlpatterns

urlpatterns = [
    path("admin/", admin.site.urls),
    # Platform host only: a tenant host answers 404.
    path("metrics", metrics, name="metrics"),
    path("", include("dashboard.urls_public")),
    *shared_urlpatterns,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
