"""Django's ASGI handler, with each request's sync work in one call on a long-lived thread.

Django's own ``ASGIHandler`` runs the middleware chain in async mode. Herald's views and
middleware are sync, so under it every request hops between the event loop and a worker thread
about half a dozen times: into the thread for the middleware, out to the loop for the view
adapter, back in for the view, and the same again on the way out. Each hop waits for the event
loop, and the loop is also the one writing WebSocket frames: during a broadcast a send's 202
would queue behind every frame of it. Here the chain is built in sync mode and called once.

Django also starts a thread for every request (a ``ThreadSensitiveContext`` each) and joins it
at the end. ``Thread.start`` blocks the event loop until the new thread runs, which under load
means until it gets the GIL, and no WebSocket frame goes out meanwhile; the join runs on yet
another thread. Together about half a millisecond of a cheap request's 5 ms. Here a fixed set
of ``WEB_THREADS`` long-lived threads serves the requests, one request at a time each, as a
WSGI server's threads do: a request's ``request_started`` signal, middleware, view and
``request_finished`` signal all run on the thread it leased, so database connections are
handled as under WSGI (``close_old_connections`` on the thread that used them). When every
thread is busy, a request waits for one; the database pool (``DATABASE_POOL_MAX_SIZE``) bounds
the same concurrency.

The real-time events a request commits are published once its response has been handed to the
server (``herald.realtime.HeldPublishes``): this process delivers them too, and a broadcast's
frames written first would keep the caller waiting for its 202.

What a request binds for its log lines and Sentry events cannot reach the next request its thread
serves: every ``run`` executes in a copy of the request's own context (asgiref's
``sync_to_async``), the middleware that binds the request id resets it on the way out
(``herald.request_ids``), and each request gets a Sentry isolation scope of its own here (Django's
``ASGIHandler.__call__``, which sentry-sdk wraps to that end, is not called).

``SyncASGIHandler`` replaces Django's ``ASGIHandler.__init__``, ``__call__`` and ``handle`` with
edited copies and calls the rest of it, so ``CHECKED_RELEASES`` names the releases it was checked
against and ``tests/herald/test_handlers.py`` fails when the installed ones are outside them or
when the upstream methods differ from what this was written for. On upgrade, check:

- Django's ``ASGIHandler.handle``: any new step (a signal, a check, a way to cancel) belongs in
  ``SyncASGIHandler.handle`` too; ``__call__``: anything new it sets up per request (sentry-sdk
  wraps it: see ``herald.observability.isolated``);
- ``__init__``: still ``BaseHandler.__init__`` plus ``load_middleware``, built in async mode
  there and in sync mode here;
- ``read_body``, ``create_request``, ``send_response``, ``listen_for_disconnect`` and
  ``chunk_size`` keep their signatures and meaning; ``create_request``'s refusals are still a
  400 for the query string and a 413 for the body (re-shaped here);
- asgiref's ``sync_to_async`` still takes ``executor`` and runs the function in a copy of the
  caller's context (a request's context variables stay its own);
- ``HttpResponseBase.close`` still sends ``request_finished``.

Then widen ``CHECKED_RELEASES`` and record the new digests in the test.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.http import FileResponse, HttpRequest, HttpResponseBase, StreamingHttpResponse
from django.urls import set_script_prefix

from herald import gc_policy, logs, observability, realtime
from herald.errors import error_response
from herald.request_ids import HEADER, log_request, loggable_path, scope_request_id

T = TypeVar("T")

# (lowest release checked, first release not checked) per distribution; requirements.txt pins one
# inside each range.
CHECKED_RELEASES: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "django": ((5, 2), (5, 3)),
    "asgiref": ((3, 13), (3, 14)),
}
Run = Callable[..., Awaitable[Any]]


# The running request's ``run`` (see ``RequestThreads.lease``), for ``send_response``.
_leased: contextvars.ContextVar[Run | None] = contextvars.ContextVar("herald_leased", default=None)


class RequestThreads:
    """One event loop's long-lived request threads, leased one request at a time."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._idle: asyncio.Queue[ThreadPoolExecutor] = asyncio.Queue()
        self._started = 0

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Run]:
        """A function that runs sync callables, one at a time, on the thread leased here."""
        if self._idle.empty() and self._started < self.size:
            self._started += 1
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="herald-request")
        else:
            executor = await self._idle.get()

        def run(func: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]:
            return sync_to_async(func, thread_sensitive=False, executor=executor)(*args, **kwargs)

        token = _leased.set(run)
        try:
            yield run
        finally:
            _leased.reset(token)
            self._idle.put_nowait(executor)


_threads: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RequestThreads] = (
    weakref.WeakKeyDictionary()
)


def request_threads() -> RequestThreads:
    """The running event loop's request threads (``WEB_THREADS`` of them)."""
    loop = asyncio.get_running_loop()
    threads = _threads.get(loop)
    if threads is None:
        threads = _threads[loop] = RequestThreads(settings.WEB_THREADS)
    return threads


class SyncASGIHandler(ASGIHandler):
    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        gc_policy.work_started()  # no freeze while this request's objects are alive
        held = realtime.HeldPublishes()
        try:
            with realtime.holding(held), observability.isolated():
                await self.handle(scope, receive, send)
        finally:
            gc_policy.work_finished()
            await realtime.publish_held(held)  # and anything held if no response went out

    async def handle(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Django's ``ASGIHandler.handle``, with the sync work on a leased thread."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        async with request_threads().lease() as run:
            await run(signals.request_started.send, sender=self.__class__, scope=scope)
            request, refusal = self.create_request(scope, body_file)
            if request is None:
                body_file.close()
                if refusal is not None:  # always, without a request
                    await self.send_response(refusal, send)
                    await run(refusal.close)
                return

            async def process_request() -> HttpResponseBase:
                response: HttpResponseBase = await run(self._respond, request)
                with contextlib.suppress(asyncio.CancelledError):  # the client went away
                    await self.send_response(response, send)
                return response

            # As Django does: a client that disconnects cancels the response (the thread runs
            # on until the view returns; the lease waits for it).
            tasks: list[asyncio.Task[Any]] = [
                asyncio.create_task(self.listen_for_disconnect(receive)),
                asyncio.create_task(process_request()),
            ]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                if task.done():
                    try:
                        task.result()
                    except RequestAborted:
                        pass
                    except AssertionError:
                        body_file.close()
                        raise
                else:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            try:
                response = tasks[1].result()
            except asyncio.CancelledError:
                await run(signals.request_finished.send, sender=self.__class__)
            else:
                await run(response.close)  # request_finished, on the thread that did the work
            body_file.close()

    def create_request(
        self, scope: Mapping[str, Any], body_file: IO[bytes]
    ) -> tuple[ASGIRequest, None] | tuple[None, HttpResponseBase]:
        """Django's, with its two refusals (a query string that is not UTF-8, a body over
        ``DATA_UPLOAD_MAX_MEMORY_SIZE``) in the contract's error shape, with a request id and
        a log line as the middleware would give them (which does not run for these)."""
        started = time.perf_counter()
        created = super().create_request(scope, body_file)
        request, refusal = created
        if request is not None or refusal is None:
            return created
        if refusal.status_code == 413:
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            response = error_response(
                413, f"The request body is larger than the {limit} bytes allowed."
            )
        else:
            response = error_response(
                400,
                "The query string holds bytes that are not UTF-8.",
                details={"query": ["Must be UTF-8 text without NUL characters."]},
            )
        request_id = scope_request_id(scope)
        response[HEADER] = request_id
        with logs.bound(request_id=request_id):
            log_request(
                method=scope.get("method", ""),
                path=loggable_path(scope.get("path", "")),
                status=response.status_code,
                started=started,
            )
        return None, response

    def _respond(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        response._handler_class = self.__class__  # type: ignore[attr-defined]  # as Django's own handler sets it
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server chunks the body itself
        return response

    async def send_response(self, response: HttpResponseBase, send: Any) -> None:
        run = _leased.get()
        if (
            isinstance(response, StreamingHttpResponse)
            and not response.is_async
            and run is not None
        ):
            # A sync iterator (a static file): Django would read it on asgiref's one
            # process-wide thread, which the WebSocket consumers' database calls use too.
            response.streaming_content = _read_on(run, response.streaming_content)
        await super().send_response(response, send)
        held = realtime.held_publishes()
        if held is not None:
            realtime.publish_held_soon(held)  # awaited at the end of __call__


async def _read_on(
    run: Run, content: Iterator[bytes] | AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    """``content``, a sync iterator, read on the request's thread (all at once, as Django reads
    it)."""
    for part in await run(list, content):
        yield part
