"""ASGI entry point: HTTP and WebSocket from one process (``uvicorn herald.asgi:application``)."""

import gc
import os

import django
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "herald.settings")
# Web processes take database connections from a pool (see DATABASES in settings).
os.environ.setdefault("DATABASE_POOL", "true")

# Django must be set up before anything imports models (the WebSocket routes do).
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402 -- needs django.setup() above

from herald.handlers import SyncASGIHandler  # noqa: E402 -- needs django.setup() above
from herald.routing import websocket_urlpatterns  # noqa: E402 -- needs django.setup() above

application = ProtocolTypeRouter(
    {
        "http": SyncASGIHandler(),
        "websocket": URLRouter(websocket_urlpatterns),
    }
)

# Everything loaded so far lives as long as the process: keep it out of the garbage collector's
# full collections, which otherwise walk it all (pauses of 40 to 76 ms were seen under load).
# What the process allocates later is collected on the thresholds of WEB_GC_THRESHOLDS, and
# long-lived connections are frozen in turn (herald.gc_policy, WEB_GC_FREEZE_SECONDS).
gc.freeze()
gc.set_threshold(*settings.WEB_GC_THRESHOLDS)
