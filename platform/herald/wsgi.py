"""WSGI entry point (HTTP only). Production serves ASGI (``herald.asgi``) for WebSocket support."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "herald.settings")

application = get_wsgi_application()
