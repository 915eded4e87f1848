"""Channel name -> plug-in. Every channel of ``names.CHANNEL_LABELS`` has exactly one entry
here (a test checks it), in the same order: the order of a send's fan-out.

Plug-ins are named by their dotted path and imported on first use (as Django names its
backends): they build on the services (the outbox, digests), which loop over this registry,
so neither side imports the other at import time. Tests may add a channel for a while with
``registered``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING

from django.utils.module_loading import import_string

from notifications.channels.base import Channel
from notifications.channels.names import EMAIL, IN_APP, PUSH

if TYPE_CHECKING:
    from billing_stub.limits import Limits
    from notifications.models import Send
    from tenants.models import Tenant

PLUGINS = {
    IN_APP: "notifications.channels.in_app.channel.InAppChannel",
    EMAIL: "notifications.channels.email.channel.EmailChannel",
    PUSH: "notifications.channels.push.channel.PushChannel",
}

_loaded: dict[str, Channel] = {}


def _plugins() -> dict[str, Channel]:
    if not _loaded:
        _loaded.update((name, import_string(path)()) for name, path in PLUGINS.items())
    return _loaded


def channel(name: str) -> Channel:
    """The plug-in of a channel. Raises KeyError for a name no plug-in serves."""
    return _plugins()[name]


def channels() -> list[Channel]:
    """Every plug-in, in fan-out order."""
    return list(_plugins().values())


def queued_channels() -> list[Channel]:
    """The plug-ins whose deliveries workers make (from the outbox), in fan-out order."""
    return [plugin for plugin in _plugins().values() if plugin.queued]


def channels_fan_out(
    *,
    tenant: Tenant,
    send: Send,
    user_ids: list[int],
    now: datetime,
    limits: Limits,
    fresh: Collection[int] = (),
    users_locked: bool = False,
) -> None:
    """Write every row of ``send`` on each of its channels, in fan-out order (see
    ``Channel.fan_out``), in the caller's transaction."""
    for plugin in _plugins().values():
        if plugin.name in send.channels:
            plugin.fan_out(
                tenant=tenant, send=send, user_ids=user_ids, now=now, limits=limits, fresh=fresh,
                users_locked=users_locked,
            )  # fmt: skip


@contextmanager
def registered(plugin: Channel) -> Iterator[Channel]:
    """``plugin`` is a channel until the block ends (for tests: the model choices and the
    API's enums stay those of ``names``)."""
    plugins = _plugins()
    if plugin.name in plugins:
        raise ValueError(f"The channel {plugin.name!r} is registered already.")
    plugins[plugin.name] = plugin
    try:
        yield plugin
    finally:
        del plugins[plugin.name]
