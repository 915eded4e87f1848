"""Checks that a fast path built on a library's private internals still matches that library.

A module that subclasses or copies a library's internals names the releases it was checked
against and, per copied or overridden function, a digest of the upstream source it was written
for. These helpers fail with a message that says what to re-check, so an upgrade that changes
what the module relies on stops at the test run instead of misbehaving in production.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from importlib.metadata import version
from typing import Any


def release(distribution: str) -> tuple[int, ...]:
    """The installed release of ``distribution`` as numbers (``"0.54.0"`` -> ``(0, 54, 0)``)."""
    return tuple(int(part) for part in re.findall(r"\d+", version(distribution))[:3])


def assert_release_in(
    distribution: str, supported: tuple[tuple[int, ...], tuple[int, ...]], recheck: str
) -> None:
    """``supported`` is ``(lowest, below)``: the lowest checked release, and the first not."""
    low, below = supported
    installed = release(distribution)
    assert low <= installed < below, (
        f"{distribution} {version(distribution)} is outside the releases checked "
        f"({'.'.join(map(str, low))} up to, not including, {'.'.join(map(str, below))}). "
        f"Re-check: {recheck}. Then widen the supported range."
    )


def source_digest(obj: Any) -> str:
    """A short digest of ``obj``'s source code (a function, method or class)."""
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


def assert_sources_unchanged(owner: type, expected: dict[str, str], recheck: str) -> None:
    """Each named attribute of ``owner`` (its own or inherited) has the source it was written
    against: ``expected`` maps names to ``source_digest`` values."""
    changed = {
        name: source_digest(inspect.getattr_static(owner, name))
        for name in expected
        if source_digest(inspect.getattr_static(owner, name)) != expected[name]
    }
    assert not changed, (
        f"{owner.__module__}.{owner.__qualname__}: {', '.join(sorted(changed))} changed upstream "
        f"(new digests {changed}). Re-check: {recheck}. Then record the new digests."
    )


def parameters(func: Any) -> list[str]:
    """The names of ``func``'s parameters, in order."""
    return list(inspect.signature(func).parameters)
