"""WebSocket routes, and the answer to a handshake on any other path."""

from typing import Any

from django.urls import path, re_path

from notifications.consumers import InboxConsumer

_DENIAL = "websocket.http.response"  # ASGI's WebSocket denial response extension
_NOT_FOUND = b'{"error": {"code": "not_found", "message": "No WebSocket endpoint at this path."}}'


async def unknown_path(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """A handshake on a path no route serves: 404 in the contract's error shape where the server
    speaks the denial extension (uvicorn), else refused (the server answers 403). Without this
    route Channels' router raises, which the server logs as an error and answers with 500."""
    await receive()  # websocket.connect
    if _DENIAL in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 404,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": _NOT_FOUND})
    else:
        await send({"type": "websocket.close", "code": 1008})


# Channels routes ASGI applications with Django's ``path``, whose stubs accept views only.
websocket_urlpatterns: list[Any] = [
    path("ws/v1/notifications", InboxConsumer.as_asgi()),  # type: ignore[arg-type]  # an ASGI app
    re_path(r"", unknown_path),  # type: ignore[arg-type]  # an ASGI app
]
