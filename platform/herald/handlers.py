"""Django's ASGI handler, with each request's middleware and view in one call on one thread.

Django's own ``ASGIHandler`` runs the middleware chain in async mode. Herald's views and
middleware are sync, so every request hopped between the event loop and a worker thread about
half a dozen times: into the thread for the middleware, out to the loop for the view adapter,
back in for the view, and the same again on the way out. Each hop waits for the event loop, and
the loop is also the one writing WebSocket frames: during a broadcast a send's 202 queued behind
every frame of it. Here the chain is built in sync mode and called once, in the request's own
thread (Django's per-request ``ThreadSensitiveContext``, where the ``request_started`` and
``request_finished`` signals run too, so database connections are handled as under WSGI).

The real-time events a request commits are published once its response has been handed to the
server (``herald.realtime.HeldPublishes``): this process delivers them too, and a broadcast's
frames written first would keep the caller waiting for its 202.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import FileResponse, HttpRequest, HttpResponseBase

from herald import gc_policy, realtime


class SyncASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        gc_policy.work_started()  # no freeze while this request's objects are alive
        held = realtime.HeldPublishes()
        token = realtime.hold_publishes(held)
        try:
            await super().handle(scope, receive, send)
        finally:
            realtime.stop_holding(token)
            gc_policy.work_finished()
            await realtime.publish_held(held)  # what is still held: no response went out

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        await super().send_response(response, send)
        held = realtime.held_publishes()
        if held is not None:
            await realtime.publish_held(held)

    async def run_get_response(self, request: HttpRequest) -> HttpResponseBase:
        response = await sync_to_async(self.get_response, thread_sensitive=True)(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks the body itself
        return response
