"""Keeps the whole middleware chain in one thread under ASGI.

Django picks each middleware's mode from the innermost outwards. Its own middleware can run either
way, so with an async-capable innermost one they all ran in async mode, and every one of their
hooks hopped to a worker thread and back (about a dozen hops per request, most of a cheap API
call's time). A sync-only innermost middleware makes all of them sync: one hop into the request's
thread at the top, one out to the view adapter, then the (sync) view in that same thread.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse


class SyncChainMiddleware:
    """Pass-through, sync only; must stay last in ``MIDDLEWARE``."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)
