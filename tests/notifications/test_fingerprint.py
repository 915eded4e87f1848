"""A send's fingerprint: the same for the same body however its keys are ordered, different
for any other body, and byte for byte what earlier releases stored (``json.dumps``), so a retry
of a send accepted before an upgrade still matches it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from notifications.services.sending import request_fingerprint


def legacy(body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


BODIES = [
    {"type": "t", "recipients": [f"user-{n}" for n in range(100)], "message": "m"},
    {"recipients": [{"locale": "de-AT", "id": "u1"}, {"id": "u2", "email": "a@b.test"}]},
    {"message": 'ctrl \x01\x1f\x7f \b\f\n\r\t " \\ / </script>', "title": ""},
    {"message": "Grüße, 東京 ✓ 😀", "data": {"ü": "é"}},
    {"data": {"n": 2**70, "m": -(2**63), "big": 2**64 - 1}},
    {"data": {"f": 1.5, "z": -0.0, "e": 1e16, "tiny": 1e-7, "x": 123456.789}},
    {"data": {"nested": [[], {}, [None, True, False]], "b": {"y": 1, "a": 2}}},
    {"recipients": ["id-1e5"], "message": "1E3"},
    [],
    {},
]


@pytest.mark.parametrize("body", BODIES)
def test_the_fingerprint_is_what_earlier_releases_stored(body):
    assert request_fingerprint(body) == legacy(body)


def test_key_order_does_not_matter_and_content_does():
    one = {"type": "t", "recipients": [{"id": "u", "locale": "fr"}], "message": "m"}
    reordered = {"message": "m", "recipients": [{"locale": "fr", "id": "u"}], "type": "t"}
    assert request_fingerprint(one) == request_fingerprint(reordered)
    assert request_fingerprint(one) != request_fingerprint({**one, "message": "n"})
    assert request_fingerprint(["a", "b"]) != request_fingerprint(["b", "a"])
