"""WebSocket routes."""

from django.urls import path

from notifications.consumers import InboxConsumer

websocket_urlpatterns = [
    path("ws/v1/notifications", InboxConsumer.as_asgi()),
]
