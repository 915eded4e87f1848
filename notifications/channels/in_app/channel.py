"""The in-app channel's plug-in (``channels.base.Channel``): its fan-out writes the
notifications; it queues nothing. A send due now to recipients who all exist takes the fast
path in ``services.sending._send_insert``, which writes the same rows in the send's own
statement."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import datetime

from billing_stub.limits import Limits
from notifications.channels.base import Sender
from notifications.channels.in_app.fan_out import fan_out_in_app_count
from notifications.channels.names import IN_APP
from notifications.models import Send
from tenants.models import Tenant


class InAppChannel:
    name = IN_APP
    queued = False
    usage_kind = None

    def fan_out(
        self,
        *,
        tenant: Tenant,
        send: Send,
        user_ids: list[int],
        now: datetime,
        limits: Limits,
        fresh: Collection[int] = (),
        users_locked: bool = False,
    ) -> int:
        return fan_out_in_app_count(
            tenant=tenant, send=send, user_ids=user_ids, now=now, fresh=fresh,
            users_locked=users_locked,
        )  # fmt: skip

    def budget(self, *, tenant: Tenant, wanted: int) -> tuple[int, float]:
        return 0, 0.0  # never queued

    def unused(self, *, tenant: Tenant, count: int) -> None:
        return None

    @contextmanager
    def sender(self, *, tenant: Tenant) -> Iterator[Sender]:
        raise NotImplementedError("In-app rows are delivered by the send itself.")
        yield  # a generator, as the interface's context manager
