"""The embeddable widget's script (and, in development, its demo page)."""

from django.urls import path  # noqa: F401 -- routes are added with the widget

urlpatterns: list = []
