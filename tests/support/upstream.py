"""Checks that a fast path built on a library's private internals still matches that library.

A module that subclasses or copies a library's internals names the releases it was checked
against and, per copied or overridden function, a digest of the upstream source it was written
for. These helpers fail with a message that says what to re-check, so an upgrade that changes
what the module relies on stops at the test run instead of misbehaving in production.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import re
import textwrap
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


def method_digest(owner: type, name: str) -> str:
    """A short digest of the source of method ``name`` as the file defining it has it.

    Read from the file, not from the live attribute: an integration (sentry-sdk wraps
    ``ASGIHandler.__call__``) may have replaced the method in this process."""
    for cls in owner.__mro__:
        if name not in vars(cls):
            continue
        source = textwrap.dedent(inspect.getsource(cls))
        for node in ast.parse(source).body[0].body:  # type: ignore[attr-defined]  # a ClassDef
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
                return _digest(ast.get_source_segment(source, node) or "")
    raise AssertionError(f"{owner.__qualname__}.{name} is not defined any more")


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def assert_sources_unchanged(owner: type, expected: dict[str, str], recheck: str) -> None:
    """Each named method of ``owner`` (its own or inherited) has the source it was written
    against: ``expected`` maps names to ``method_digest`` values."""
    changed = {
        name: digest
        for name in expected
        if (digest := method_digest(owner, name)) != expected[name]
    }
    assert not changed, (
        f"{owner.__module__}.{owner.__qualname__}: {', '.join(sorted(changed))} changed upstream "
        f"(new digests {changed}). Re-check: {recheck}. Then record the new digests."
    )


def parameters(func: Any) -> list[str]:
    """The names of ``func``'s parameters, in order."""
    return list(inspect.signature(func).parameters)
