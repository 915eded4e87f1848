"""Herald's own words: which language, which direction, and catalogues that ship complete."""

from __future__ import annotations

import gettext
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from django.utils import translation

from notifications.channels.email.rendering import default_templates, herald_text, render_email
from notifications.languages import (
    herald_languages,
    language_for,
    language_from_header,
    text_direction,
)

CATALOGUES = Path(__file__).resolve().parents[2] / "notifications" / "locale"


def test_herald_speaks_the_languages_it_has_a_catalogue_for():
    assert herald_languages() >= {"en", "de"}
    assert language_for("de-AT") == "de"
    assert language_for("en") == "en"
    assert language_for("de_at") == "de"  # as a user might have been saved before
    assert language_for("fr") is None
    assert language_for("") is None


@pytest.mark.parametrize(
    ("header", "language"),
    [
        ("de-DE,de;q=0.9,en;q=0.8", "de"),
        ("fr-CH, fr;q=0.9, en;q=0.8, de;q=0.7", "en"),
        ("en;q=0.5, de", "de"),
        ("de;q=0, en", "en"),
        ("fr, *;q=0.1", None),
        ("", None),
        ("not a tag;;q=x, de", "de"),
    ],
)
def test_accept_language_picks_the_preferred_language_herald_speaks(header, language):
    assert language_from_header(header) == language


def test_right_to_left_languages_are_told_by_cldr():
    assert [text_direction(tag) for tag in ("ar", "he", "fa-IR", "ur", "de-AT", "en", "xx")] == [
        "rtl", "rtl", "rtl", "rtl", "ltr", "ltr", "ltr",
    ]  # fmt: skip


@pytest.mark.parametrize("language", sorted(herald_languages() - {"en"}))
def test_every_catalogue_is_complete_and_compiled_from_its_source(language):
    folder = CATALOGUES / language / "LC_MESSAGES"
    with (folder / "django.po").open("rb") as source:
        catalogue = read_po(source)
    with (folder / "django.mo").open("rb") as compiled:
        mo = gettext.GNUTranslations(compiled)
    for message in catalogue:
        if not message.id:
            continue
        if message.pluralizable:
            assert all(message.string), message.id
            singular, plural = message.id
            assert mo.ngettext(singular, plural, 1) == message.string[0]
            assert mo.ngettext(singular, plural, 2) == message.string[1]
        else:
            assert message.string, message.id
            assert mo.gettext(message.id) == message.string, "recompile the .mo"


CONTEXT = {"title": "T", "message": "M", "tenant": {"name": "Acme"}, "unsubscribe_url": "https://u"}


def test_english_defaults_read_as_before():
    email = render_email(subject="", text="", html="", context=CONTEXT)
    assert email.text == "M\n\n--\nAcme. Stop these emails: https://u\n"
    assert email.html == (
        '<!doctype html><html lang="en"><body><h1>T</h1><p>M</p><hr><p style="font-size:small">'
        'Acme. <a href="https://u">Unsubscribe</a> from these emails.</p></body></html>'
    )


def test_translated_words_are_literal_text_in_a_template():
    """A translation holding markup or Liquid is shown as written, never run."""
    assert herald_text("<b>{{ x }}</b> %(name)s", html=True, name="{{ y }}") == (
        "{% raw %}&lt;b&gt;{{ x }}&lt;/b&gt; {% endraw %}{{ y }}"
    )
    with translation.override("de"):
        _subject, text, html = default_templates(lang="ar", direction="rtl")
    assert html.startswith('<!doctype html><html lang="ar" dir="rtl"><body>')
    assert "abbestellen" in text
