"""WebSocket routes. The notification consumer joins this list with the real-time issue."""

from django.urls import URLPattern

websocket_urlpatterns: list[URLPattern] = []
