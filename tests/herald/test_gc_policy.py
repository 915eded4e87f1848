"""The web process's collect-and-freeze (herald.gc_policy)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from herald import gc_policy


class Node:
    other: Node


def cycle() -> weakref.ref[Node]:
    """A reference cycle that is garbage once this returns; a weak reference to watch it by."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def freezer() -> Iterator[gc_policy.Freezer]:
    try:
        yield gc_policy.Freezer(interval=10)
    finally:
        gc.unfreeze()  # this test process must keep collecting everything


def test_no_freeze_while_a_request_is_in_flight(freezer):
    gc_policy.work_started()
    try:
        assert freezer.freeze_if_idle() is False
        assert gc.get_freeze_count() == 0
    finally:
        gc_policy.work_finished()
    assert freezer.freeze_if_idle() is True
    assert gc.get_freeze_count() > 0


def test_garbage_is_collected_before_a_freeze(freezer):
    garbage = cycle()
    assert freezer.freeze_if_idle()
    assert garbage() is None  # collected, not frozen


def test_the_hourly_thaw_frees_garbage_that_was_frozen(freezer):
    node = Node()
    node.other = node
    watch = weakref.ref(node)
    gc.freeze()  # frozen while alive, as a request in flight would be
    del node  # garbage now, in the permanent generation
    assert freezer.freeze_if_idle()
    assert watch() is not None  # collections skip what is frozen
    freezer.thaw_interval = 0
    assert freezer.freeze_if_idle()
    assert watch() is None
