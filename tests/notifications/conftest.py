"""Fixtures of the notification tests. ``test_realtime.py`` has live-socket ``alpha`` and
``bravo`` fixtures of its own, which take precedence there."""

from __future__ import annotations

import pytest

from tests.support.api import Caller


@pytest.fixture
def alpha(committed, world) -> Caller:
    """Tenant A's API key, with writes committed (the worker is another process)."""
    return Caller(host=world.alice.host, token=world.alice.api_key)


@pytest.fixture
def bravo(committed, world) -> Caller:
    return Caller(host=world.bob.host, token=world.bob.api_key)
