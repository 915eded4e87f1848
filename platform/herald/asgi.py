"""ASGI entry point: HTTP and WebSocket from one process (``uvicorn herald.asgi:application``)."""

import contextlib
import gc
import os
import resource

import django
from django.conf import settings


def raise_open_files_limit() -> None:
    """Raise this process's soft limit of open files to its hard limit.

    A web process holds one socket per WebSocket, 10,000 and more, but containers commonly start
    it with a soft limit of 1,024 under a much higher hard one (the soft limit is there for
    programs that still use ``select``; uvloop does not): past it, accepting a connection fails
    with EMFILE. Any process may raise its soft limit up to the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # (A hard limit above what the kernel grants, nr_open, stays unraised.)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


raise_open_files_limit()
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
