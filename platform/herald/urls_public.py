"""URLs on the platform host: everything on tenant hosts, plus the platform's Django admin."""

from django.contrib import admin
from django.urls import path

from herald.urls import handler400, handler403, handler404, handler500
from herald.urls import urlpatterns as tenant_urls

urlpatterns = [
    path("admin/", admin.site.urls),
    *tenant_urls,
]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
