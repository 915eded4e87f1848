"""herald.safejson: depth measured without recursion, NUL and lone surrogates found wherever they
hide, and nothing legitimate refused."""

from __future__ import annotations

import json
import random

import pytest

from dashboard.forms_content import PreviewForm
from herald.safejson import UnsafeJSON, check_depth, loads


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("limit", [1, 2, 64])
def test_the_limit_itself_passes_and_one_more_level_does_not(limit):
    check_depth(nested(limit), limit)
    with pytest.raises(UnsafeJSON, match=f"more than {limit} levels"):
        check_depth(nested(limit + 1), limit)


def test_objects_and_arrays_count_alike():
    check_depth(b'{"a": [{"b": [1]}]}', 4)
    with pytest.raises(UnsafeJSON):
        check_depth(b'{"a": [{"b": [1]}]}', 3)


def test_many_shallow_brackets_pass():
    recipients = ",".join(f'{{"id": "u{i}", "name": "[{{x}}]"}}' for i in range(10_000))
    check_depth(b'{"recipients": [%s]}' % recipients.encode(), 3)


def test_brackets_inside_strings_do_not_count():
    text = json.dumps({"a": "[" * 500 + '\\"[{' + "{" * 500})
    assert loads(text) == json.loads(text)
    with pytest.raises(UnsafeJSON):
        check_depth(text.encode(), 0)  # the object itself is one level


def test_thousands_deep_is_refused_before_decoding():
    with pytest.raises(UnsafeJSON):
        loads(b"[" * 100_000)  # not even well-formed: refused all the same, without recursion


@pytest.mark.parametrize(
    "text",
    [
        '"\\u0000"',
        '{"\\u0000": 1}',
        '{"a": [1, {"b": "x\\u0000"}]}',
        '"\\ud800"',
        '"\\udfff"',
        '{"\\uDBFF": 1}',
        '"\\\\\\u0000"',  # an escaped backslash, then NUL
    ],
)
def test_nul_and_lone_surrogates_are_refused_in_strings_and_keys(text):
    with pytest.raises(UnsafeJSON):
        loads(text)


@pytest.mark.parametrize(
    "text",
    [
        '"\\\\u0000"',  # an escaped backslash and the text u0000
        '"\\ud83d\\ude00"',  # a surrogate pair: one character
        '"caf\u00e9 \U0001f600 \\u00e9"',
        '{"a": [null, true, 1.5, "\\u0001"]}',
    ],
)
def test_legitimate_text_passes(text):
    assert loads(text) == json.loads(text)


def test_malformed_json_is_the_decoders_value_error():
    with pytest.raises(json.JSONDecodeError):
        loads("{not json")


@pytest.mark.parametrize("sample", ["[" * 5000 + "]" * 5000, '{"a": "\\u0000"}'])
def test_the_dashboard_preview_refuses_deep_or_nul_sample_data_as_a_form_error(sample):
    form = PreviewForm({"sample_data": sample})
    assert not form.is_valid()
    assert "sample_data" in form.errors


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


def _random_json(rng: random.Random, depth: int) -> object:
    def text() -> str:
        return "".join(rng.choice('[]{}"\\ab\u00e9') for _ in range(rng.randint(0, 6)))

    if depth == 0 or rng.random() < 0.2:
        return rng.choice([text(), 1, None, True])
    children = [_random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.5:
        return children
    return {text(): child for child in children}


def test_the_depth_matches_the_decoders_on_random_documents_with_tricky_strings():
    rng = random.Random(18)  # noqa: S311 -- a reproducible sequence, not a secret
    for _ in range(3000):
        value = _random_json(rng, rng.randint(1, 12))
        raw = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        depth = _depth(value)
        check_depth(raw, depth)
        if depth:
            with pytest.raises(UnsafeJSON):
                check_depth(raw, depth - 1)
