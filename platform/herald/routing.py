"""WebSocket routes."""

from typing import Any

from django.urls import path

from notifications.consumers import InboxConsumer

# Channels routes ASGI applications with Django's ``path``, whose stubs accept views only.
websocket_urlpatterns: list[Any] = [
    path("ws/v1/notifications", InboxConsumer.as_asgi()),  # type: ignore[arg-type]  # an ASGI app
]
