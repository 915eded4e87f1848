"""Dashboard pages on the platform host: self-serve sign-up."""

from django.urls import path  # noqa: F401 -- sign-up pages are added here

urlpatterns: list = []
