"""A real SMTP server (aiosmtpd) that keeps what it accepts, for email tests.

Recipients whose address starts with ``bounce`` get a permanent 550; ``greylist`` ones get a
temporary 451 on their first attempt. ``delay`` holds each message before the final 250 (to kill
a worker mid-batch); a message whose client vanished meanwhile is not accepted.
``hold_next_message()`` holds the next message unanswered until its client goes away: a worker
killed while ``held`` is set certainly died before that message was accepted.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from tests.support.processes import free_port


@dataclass
class SmtpSink:
    port: int = 0
    delay: float = 0.0
    messages: list[EmailMessage] = field(default_factory=list)
    in_data: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    _hold_next: bool = False
    _greylisted: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def hold_next_message(self) -> None:
        self.held.clear()
        self._hold_next = True

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received() if address in m["To"]]

    def addressed(self, addresses: Iterable[str]) -> list[str]:
        """The ``To`` addresses received that are among ``addresses``, once per message: a
        test's own mail, whatever else a worker sent meanwhile (what earlier tests left queued
        for a shared tenant)."""
        wanted = set(addresses)
        to = (a.addr_spec for m in self.received() for a in m["To"].addresses)
        return [address for address in to if address in wanted]

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options):
        if address.startswith("bounce"):
            return "550 5.1.1 No such user here"
        if address.startswith("greylist") and address not in self._greylisted:
            self._greylisted.add(address)
            return "451 4.7.1 Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.in_data.set()
        if self._hold_next:
            self._hold_next = False
            self.held.set()
            while server.transport is not None and not server.transport.is_closing():
                await asyncio.sleep(0.01)
            return "421 4.4.2 Connection lost"
        if self.delay:
            await asyncio.sleep(self.delay)
            if server.transport is None or server.transport.is_closing():
                return "421 4.4.2 Connection lost"
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"


@contextmanager
def smtp_sink(delay: float = 0.0) -> Iterator[SmtpSink]:
    sink = SmtpSink(port=free_port(), delay=delay)
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()
