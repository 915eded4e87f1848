"""Serve ``herald.asgi`` in this process, as the Procfile's web process does, and report what the
connections closed since a mark left for the cyclic garbage collector.

A web process holding thousands of WebSockets has some 200 tracked objects per connection, and a
full collection walks them all with the event loop stopped. A closed connection that is freed by
reference counting costs nothing; one caught in a reference cycle waits for such a collection.
The test driving this script asserts the first.

One JSON line per command, on stdin and stdout:

- at start, prints ``{"port": N}`` once serving;
- ``mark``: collects, then turns automatic collection off; prints ``{}``;
- ``stats``: prints ``{"open": connections open, "registered": connections in the dispatcher,
  "frozen": gc.get_freeze_count()}``;
- ``collect``: waits until no connection is open, collects with ``DEBUG_SAVEALL`` and prints
  ``{"objects": n, "types": {"module.Type": count, ...}}``;
- end of input: stops.
"""

from __future__ import annotations

import asyncio
import collections
import gc
import json
import logging
import sys
import time

import uvicorn


def _reply(message: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _name(o: object) -> str:
    """An object's type; for a frame or a function, also where its code is."""
    name = f"{type(o).__module__}.{type(o).__qualname__}"
    code = getattr(o, "f_code", None) or getattr(o, "__code__", None)
    if code is not None:
        name += f" {code.co_qualname} ({code.co_filename.rsplit('/', 2)[-1]}:{code.co_firstlineno})"
    return name


async def _wait_closed(server: uvicorn.Server, timeout: float = 10) -> None:
    """Until no connection is open and every consumer has left the dispatcher."""
    from herald.realtime import dispatcher

    deadline = time.monotonic() + timeout
    while server.server_state.connections or dispatcher()._connections:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(server.server_state.connections)} connections still open")
        await asyncio.sleep(0.02)


async def main() -> None:
    from herald.asgi import application  # sets Django up, as under uvicorn
    from herald.realtime import dispatcher
    from tests.support.processes import free_port

    # The app logs on stdout (herald.logs); this script's stdout is for its answers.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sys.stderr)

    port = free_port()
    config = uvicorn.Config(  # the Procfile's web flags
        application,
        host="127.0.0.1",
        port=port,
        lifespan="off",
        proxy_headers=True,
        ws="herald.wsprotocol:WebSocketProtocol",
        ws_ping_interval=20,
        ws_ping_timeout=20,
        ws_per_message_deflate=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    _reply({"port": port})
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        if line == "mark":
            gc.collect()
            gc.disable()
            _reply({})
        elif line == "stats":
            _reply(
                {
                    "open": len(server.server_state.connections),
                    "registered": sum(map(len, dispatcher()._connections.values())),
                    "frozen": gc.get_freeze_count(),
                }
            )
        elif line == "collect":
            await _wait_closed(server)
            gc.set_debug(gc.DEBUG_SAVEALL)
            objects = gc.collect()
            gc.set_debug(0)
            types = collections.Counter(_name(o) for o in gc.garbage)
            gc.garbage.clear()
            _reply({"objects": objects, "types": dict(types.most_common(40))})
    server.should_exit = True
    await serving


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())
