"""What every channel plug-in provides, and the errors its transport may raise.

The pipeline loops over channels (``registry``) and never names one:

- at a send, ``fan_out`` writes the channel's rows for the recipients, in the send's
  transaction (in-app: the notifications themselves; a queued channel: one ``Delivery`` outbox
  row each, through ``services.deliveries``);
- in a worker's turn, for a ``queued`` channel, the delivery state machine
  (``services.delivery_machine``) claims a batch of its rows within ``budget``, opens one
  ``sender`` for the batch and calls ``deliver`` once per row; it records each outcome;
- a channel may also provide ``released(*, tenant, deliveries, now) -> list[int]``: called
  with the delayed rows (``channel_rules``) a turn just claimed for the first time, it takes
  over those whose ids it returns (email: a digest type's join the digest open now);
- ``deliver`` returns when the channel accepted the message, and otherwise raises one of the
  two errors below. The machine decides what follows: a transient ``TransportError`` is
  retried with backoff up to ``DELIVERY_MAX_ATTEMPTS``, a permanent one fails the row,
  ``Suppressed`` marks it ``suppressed_quota``. Any other exception fails that row alone
  (logged); database and Redis errors end the batch, whose rows are claimed again once their
  lease runs out.
"""

from __future__ import annotations

from collections.abc import Collection
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from billing_stub.limits import Limits
    from notifications.models import Delivery, Send
    from tenants.models import Tenant


class TransportError(Exception):
    """A delivery did not go out. ``permanent``: it never will (a 5xx, a template that does not
    render); otherwise another attempt may succeed (a 4xx, a broken connection)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


class Suppressed(Exception):
    """The channel refused the delivery for the tenant's plan (its quota is used up): final,
    and not the recipient's failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Sender(Protocol):
    """One batch's connection to the channel's service."""

    def deliver(self, delivery: Delivery) -> None:
        """Hand one delivery over. Raises TransportError or Suppressed."""
        ...


class Channel(Protocol):
    name: str
    # True: ``fan_out`` writes ``Delivery`` rows that workers deliver through ``sender``.
    queued: bool
    # The usage meter (``billing_stub.metering``) a delivered row counts against, if any.
    usage_kind: str | None

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
        """Write this channel's rows of ``send`` for ``user_ids`` in the caller's transaction;
        returns how many it wrote to deliver. ``limits``: the tenant's, read once by the send;
        ``fresh``: users this transaction created; ``users_locked``: every user is locked FOR
        KEY SHARE already (``recipients_upsert``), or held with all of the tenant's
        (``recipients_hold``)."""
        ...

    def budget(self, *, tenant: Tenant, wanted: int) -> tuple[int, float]:
        """How many rows a turn may deliver now (at most ``wanted``), and if none, how many
        seconds until one may go (a plan's send rate)."""
        ...

    def unused(self, *, tenant: Tenant, count: int) -> None:
        """Give back budget a turn took and did not use (it found fewer rows ready)."""
        ...

    def sender(self, *, tenant: Tenant) -> AbstractContextManager[Sender]:
        """A sender for one batch; closed when the batch ends."""
        ...
