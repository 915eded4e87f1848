"""Language tags: validated and normalised; the fallback chain and the resolution of one text."""

from __future__ import annotations

import pytest

from notifications.localisation import locale_chain, locale_normalise, text_for


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("de_at", "de-AT"),
        ("DE-at", "de-AT"),
        ("zh-hant-tw", "zh-Hant-TW"),
        ("es-419", "es-419"),
        ("pt_br", "pt-BR"),
        ("de-XX", "de-XX"),  # a region without CLDR data is still a tag; it falls back to de
        ("ar", "ar"),
        ("", ""),
    ],
)
def test_valid_tags_are_normalised(given, stored):
    assert locale_normalise(given) == stored


@pytest.mark.parametrize(
    "given", ["xx", "english", "de-", "de--AT", "en-US-POSIX", "1de", "d" * 40]
)
def test_invalid_tags_are_refused(given):
    assert locale_normalise(given) is None


def test_the_chain_goes_from_the_exact_tag_down_to_the_language():
    assert locale_chain("zh-Hant-TW") == ("zh-Hant-TW", "zh-Hant", "zh")
    assert locale_chain("de") == ("de",)
    assert locale_chain("") == ()


LOCALES = {"de-AT": {"title": "Servus"}, "de": {"title": "Hallo", "message": "Nachricht"}}


@pytest.mark.parametrize(
    ("tag", "field", "type_text", "expected"),
    [
        ("de-AT", "title", "", ("Servus", "de-AT")),  # exact tag
        ("de-AT", "message", "", ("Nachricht", "de")),  # its language
        ("de-CH", "title", "", ("Hallo", "de")),
        ("fr", "title", "Type title", ("Type title", "type")),  # the type's own field
        ("fr", "title", "", (None, "send")),  # the send's own text
        ("", "title", "", (None, "send")),
    ],
)
def test_resolution_exact_then_language_then_type_then_send(tag, field, type_text, expected):
    assert text_for(LOCALES, field, tag, type_text=type_text) == expected
