"""The embeddable widget's script on every host, and (in development mode) its demo page."""

from django.urls import path, re_path

from widget import demo, views
from widget.locales import LANGUAGE_PATTERN

app_name = "widget"

urlpatterns = [
    path("v1/herald.js", views.script, name="script"),
    re_path(
        r"^v1/herald\.(?P<digest>[0-9a-f]{8})\.js$", views.script_immutable, name="script-immutable"
    ),
    path("v1/herald-sw.js", views.service_worker, name="service-worker"),
    path("v1/herald-settings.js", views.settings_script, name="settings"),
    re_path(
        rf"^v1/locales/(?P<language>{LANGUAGE_PATTERN})\.json$",
        views.locale_catalogue,
        name="locale",
    ),
    path("v1/manifest.json", views.manifest, name="manifest"),
    path("demo", demo.demo_page, name="demo"),
    path("demo/token", demo.demo_token, name="demo-token"),
    path("demo/send", demo.demo_send, name="demo-send"),
]
