"""Cursors: the schema's pattern describes exactly the cursors the API makes and takes."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from herald.errors import ApiError
from herald.pagination import CURSOR_PATTERN, MAX_ID, decode_cursor, encode_cursor


@given(st.integers(min_value=0, max_value=10**25))
def test_every_cursor_made_matches_the_pattern_and_reads_back(last_id):
    cursor = encode_cursor(last_id)
    assert re.fullmatch(CURSOR_PATTERN, cursor)
    assert decode_cursor(cursor) == min(last_id, MAX_ID)


@settings(max_examples=500)
@given(st.from_regex(CURSOR_PATTERN, fullmatch=True).filter(lambda c: len(c) <= 64))
def test_every_cursor_the_pattern_allows_is_taken(cursor):
    assert 0 <= decode_cursor(cursor) <= MAX_ID


@pytest.mark.parametrize("cursor", ["", "garbage!", "djE6LTE", "djE6MQ==", "djE6MQ\n", "dj" * 40])
def test_anything_else_is_refused(cursor):
    with pytest.raises(ApiError):
        decode_cursor(cursor)
