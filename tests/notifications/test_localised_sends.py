"""Localised sends: a type's per-locale texts, resolved and rendered for each recipient of a
real send, as the REST inbox and the WebSocket deliver them; users' locales; the filters."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import schema_context

from notifications.models import EndUser, Notification
from notifications.templating import render, template_names
from tests.notifications.test_realtime import Live, frame, frames_until, new_user
from tests.support.api import Caller, error_code

LOCALES = {
    "de-AT": {"title": "Servus {{ title }}", "message": "Grüß Gott: {{ message }}"},
    "de": {"title": "Hallo {{ title }}", "message": "Nachricht: {{ message }}"},
    "fr": {"message": "Bonjour, {{ message }}"},
}


def _type(caller: Caller, key: str, locales: dict) -> None:
    response = caller.put(f"/api/v1/types/{key}", {"locales": locales})
    assert response.status_code in (200, 201), response.content


def _inbox(caller: Caller, external_id: str) -> list[dict]:
    token = caller.post(f"/api/v1/users/{external_id}/token").json()["token"]
    page = Caller(host=caller.host, token=token).get("/api/v1/me/notifications")
    assert page.status_code == 200
    return page.json()["results"]


def _texts(caller: Caller, users: Sequence[str]) -> dict[str, tuple[str, str]]:
    """Each user's newest in-app title and message."""
    return {u: (n["title"], n["message"]) for u in users for n in _inbox(caller, u)[:1]}


class TestResolution:
    def test_each_recipient_gets_exact_then_language_then_the_sends_text(self, alice_key):
        _type(alice_key, "greet", LOCALES)
        for external_id, locale in (("l-at", "de-AT"), ("l-ch", "de-CH"), ("l-fr", "fr"),
                                    ("l-none", "")):  # fmt: skip
            alice_key.put(f"/api/v1/users/{external_id}", {"locale": locale})
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "greet", "recipients": ["l-at", "l-ch", "l-fr", "l-none"],
             "title": "Welt", "message": "hi"},
        )  # fmt: skip
        assert response.status_code == 202, response.content
        got = _texts(alice_key, ("l-at", "l-ch", "l-fr", "l-none"))
        assert got == {
            "l-at": ("Servus Welt", "Grüß Gott: hi"),  # exact
            "l-ch": ("Hallo Welt", "Nachricht: hi"),  # language
            "l-fr": ("Welt", "Bonjour, hi"),  # the send's title: fr has none
            "l-none": ("Welt", "hi"),  # the send's own
        }

    def test_a_type_without_locales_sends_as_before(self, alice_key):
        alice_key.put("/api/v1/users/plain-1", {"locale": "de-AT"})
        alice_key.post(
            "/api/v1/notifications",
            {"type": "plain", "recipients": ["plain-1"], "title": "T", "message": "M"},
        )
        assert [(n["title"], n["message"]) for n in _inbox(alice_key, "plain-1")] == [("T", "M")]

    def test_new_recipients_given_as_objects_get_their_locales_texts(self, alice_key):
        _type(alice_key, "greet", LOCALES)
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "greet", "recipients": [{"id": "obj-1", "locale": "de_at"}, "obj-2"],
             "message": "x"},
        )  # fmt: skip
        assert response.status_code == 202, response.content
        assert alice_key.get("/api/v1/users/obj-1").json()["locale"] == "de-AT"
        assert _inbox(alice_key, "obj-1")[0]["message"] == "Grüß Gott: x"
        assert _inbox(alice_key, "obj-2")[0]["message"] == "x"

    def test_new_and_existing_recipients_mixed_get_their_locales_texts(
        self, alice_key, world, monkeypatch
    ):
        from notifications.channels.in_app import localised

        read: list[int] = []
        real = localised._users_by_locale

        def recording(user_ids: list[int]) -> list[tuple[str, str, list[int]]]:
            read.extend(user_ids)
            return real(user_ids)

        _type(alice_key, "greet", LOCALES)
        alice_key.put("/api/v1/users/mx-old", {"locale": "de-AT"})
        alice_key.put("/api/v1/users/mx-upd", {"locale": "fr"})
        monkeypatch.setattr(localised, "_users_by_locale", recording)
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "greet", "title": "Welt", "message": "hi",
             "recipients": ["mx-old", {"id": "mx-upd", "locale": "de"},
                            {"id": "mx-new", "locale": "fr"}, "mx-plain"]},
        )  # fmt: skip
        assert response.status_code == 202, response.content
        got = _texts(alice_key, ("mx-old", "mx-upd", "mx-new", "mx-plain"))
        assert got == {
            "mx-old": ("Servus Welt", "Grüß Gott: hi"),
            "mx-upd": ("Hallo Welt", "Nachricht: hi"),  # as this send updated them
            "mx-new": ("Welt", "Bonjour, hi"),
            "mx-plain": ("Welt", "hi"),
        }
        # The users this send created are not read again: their insert gave their locales.
        with schema_context(world.tenant_a.schema_name):
            existing = set(
                EndUser.objects.filter(external_id__in=["mx-old", "mx-upd"]).values_list(
                    "pk", flat=True
                )
            )
        assert set(read) == existing

    def test_plain_ids_take_their_locales_from_the_sends_lookup(self, alice_key, monkeypatch):
        """Existing users named by plain ids come with their locales from the lookup of the
        send's own statement, and users it creates have none: nobody's are read again."""
        from notifications.channels.in_app import localised

        read: list[int] = []
        real = localised._users_by_locale
        monkeypatch.setattr(
            localised, "_users_by_locale", lambda ids: read.extend(ids) or real(ids)
        )
        _type(alice_key, "greet", LOCALES)
        alice_key.put("/api/v1/users/px-at", {"locale": "de-AT"})
        alice_key.put("/api/v1/users/px-fr", {"locale": "fr", "timezone": "Europe/Paris"})
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "greet", "title": "Welt", "message": "hi",
             "recipients": ["px-at", "px-new", "px-fr"]},
        )  # fmt: skip
        assert response.status_code == 202, response.content
        got = _texts(alice_key, ("px-at", "px-new", "px-fr"))
        assert got == {
            "px-at": ("Servus Welt", "Grüß Gott: hi"),
            "px-new": ("Welt", "hi"),
            "px-fr": ("Welt", "Bonjour, hi"),
        }
        assert read == []

    def test_templates_render_once_per_locale_group_not_per_recipient(self, alice_key, monkeypatch):
        from notifications.channels.in_app import localised

        calls: list[str] = []
        real = localised.render

        def counting(source: str, *args: object, **kwargs: object) -> str:
            calls.append(source)
            return real(source, *args, **kwargs)

        monkeypatch.setattr(localised, "render", counting)
        _type(alice_key, "greet", LOCALES)
        recipients = [{"id": f"g-{n}", "locale": ("de-AT", "fr", "")[n % 3]} for n in range(12)]
        response = alice_key.post(
            "/api/v1/notifications", {"type": "greet", "recipients": recipients, "message": "m"}
        )
        assert response.status_code == 202
        # de-AT: title and message; fr: message only; no locale: nothing to render.
        assert sorted(calls) == sorted(
            [LOCALES["de-AT"]["title"], LOCALES["de-AT"]["message"], LOCALES["fr"]["message"]]
        )
        assert _inbox(alice_key, "g-3")[0]["message"] == "Grüß Gott: m"

    def test_a_per_user_template_renders_per_recipient(self, alice_key):
        _type(alice_key, "hello", {"en": {"message": "Hi {{ user.name }} ({{ user.id }})"}})
        for external_id, name in (("pu-1", "Ann"), ("pu-2", "Bo")):
            alice_key.put(f"/api/v1/users/{external_id}", {"locale": "en-GB", "name": name})
        alice_key.post(
            "/api/v1/notifications",
            {"type": "hello", "recipients": ["pu-1", "pu-2"], "message": "x"},
        )
        assert _inbox(alice_key, "pu-1")[0]["message"] == "Hi Ann (pu-1)"
        assert _inbox(alice_key, "pu-2")[0]["message"] == "Hi Bo (pu-2)"

    @pytest.mark.parametrize(
        ("template", "per_user"),
        [
            ("Hi {{ username }}, a message for every user", False),
            ("{{ 'user' }} {{ data.user_count }} {% assign users = 2 %}{{ users }}", False),
            ("Hi {{ user.name }}", True),
            ("{% assign who = user %}{{ who.email }}", True),
            ("{% if user %}x{% endif %}", True),
        ],
    )
    def test_only_a_template_that_reads_user_renders_per_recipient(
        self, alice_key, monkeypatch, template, per_user
    ):
        from notifications.channels.in_app import localised

        calls: list[str] = []
        real = localised.render

        def counting(source: str, *args: object, **kwargs: object) -> str:
            calls.append(source)
            return real(source, *args, **kwargs)

        monkeypatch.setattr(localised, "render", counting)
        _type(alice_key, "words", {"de": {"message": template}})
        recipients = [{"id": f"w-{n}", "locale": "de"} for n in range(4)]
        response = alice_key.post(
            "/api/v1/notifications", {"type": "words", "recipients": recipients, "message": "m"}
        )
        assert response.status_code == 202, response.content
        assert calls == [template] * (4 if per_user else 1)

    def test_dates_and_numbers_follow_each_recipients_locale_and_time_zone(self, alice_key):
        template = "{{ data.due | date_local: 'medium' }} / {{ data.n | number_local }}"
        _type(alice_key, "due", {"de": {"message": template}, "en": {"message": template}})
        alice_key.put("/api/v1/users/d-at", {"locale": "de-AT", "timezone": "Europe/Vienna"})
        alice_key.put("/api/v1/users/d-en", {"locale": "en", "timezone": "America/New_York"})
        alice_key.post(
            "/api/v1/notifications",
            {"type": "due", "recipients": ["d-at", "d-en"], "message": "x",
             "data": {"due": "2026-03-01T23:30:00Z", "n": 1234.5}},
        )  # fmt: skip
        assert _inbox(alice_key, "d-at")[0]["message"] == "02.03.2026, 00:30:00 / 1.234,5"
        assert _inbox(alice_key, "d-en")[0]["message"] == "Mar 1, 2026, 6:30:00\u202fPM / 1,234.5"

    def test_a_template_that_fails_to_render_falls_back_to_the_sends_text(
        self, alice_key, settings, caplog
    ):
        settings.TEMPLATE_LOOP_LIMIT = 5
        _type(alice_key, "loopy", {"de": {"message": "{% for i in (1..100) %}x{% endfor %}"}})
        alice_key.put("/api/v1/users/loop-1", {"locale": "de"})
        with caplog.at_level(logging.WARNING):
            response = alice_key.post(
                "/api/v1/notifications",
                {"type": "loopy", "recipients": ["loop-1"], "message": "own"},
            )
        assert response.status_code == 202
        assert _inbox(alice_key, "loop-1")[0]["message"] == "own"
        assert "locales.de.message" in caplog.text


class TestOneStatement:
    """Once this process has seen a localised type, a send of it to users who all exist is one
    statement, which resolves each recipient's texts in SQL (``pre_rendered``): it must resolve
    exactly as the per-group path does, and never from an out-of-date type."""

    def _send(self, caller: Caller, key: str, recipients: list[str], **body) -> int:
        """Send; the number of statements that wrote notifications."""
        with CaptureQueriesContext(connection) as queries:
            response = caller.post(
                "/api/v1/notifications",
                {"type": key, "recipients": recipients, "title": "Welt", "message": "hi", **body},
            )
        assert response.status_code == 202, response.content
        return sum("INSERT INTO notifications_notification" in q["sql"] for q in queries)

    def test_both_paths_resolve_the_same_table(self, alice_key):
        _type(alice_key, "greet1", {**LOCALES, "zh-Hant": {"title": "繁 {{ title }}"}})
        users = {"o-at": "de-AT", "o-ch": "de-CH", "o-fr": "fr", "o-none": "",
                 "o-tw": "zh-Hant-TW", "o-zh": "zh"}  # fmt: skip
        for external_id, locale in users.items():
            alice_key.put(f"/api/v1/users/{external_id}", {"locale": locale})
        expected = {
            "o-at": ("Servus Welt", "Grüß Gott: hi"),  # exact
            "o-ch": ("Hallo Welt", "Nachricht: hi"),  # language
            "o-fr": ("Welt", "Bonjour, hi"),  # fr has no title: the send's
            "o-none": ("Welt", "hi"),  # no locale: the send's own
            "o-tw": ("繁 Welt", "hi"),  # language and script; no message there: the send's
            "o-zh": ("Welt", "hi"),  # no zh key
        }
        assert self._send(alice_key, "greet1", list(users)) == 2  # first seen: two statements
        assert _texts(alice_key, list(users)) == expected
        assert self._send(alice_key, "greet1", list(users)) == 1  # one statement now
        assert _texts(alice_key, list(users)) == expected

    def test_a_changed_type_is_never_sent_from_what_was_seen_before(self, alice_key):
        _type(alice_key, "greet2", LOCALES)
        alice_key.put("/api/v1/users/c-at", {"locale": "de-AT"})
        self._send(alice_key, "greet2", ["c-at"])
        _type(alice_key, "greet2", {"de": {"title": "Neu {{ title }}"}})
        assert self._send(alice_key, "greet2", ["c-at"]) == 2  # out of date: the other path
        assert _texts(alice_key, ["c-at"]) == {"c-at": ("Neu Welt", "hi")}
        assert self._send(alice_key, "greet2", ["c-at"]) == 1
        assert _texts(alice_key, ["c-at"]) == {"c-at": ("Neu Welt", "hi")}
        _type(alice_key, "greet2", {})  # no locales any more: the send's own texts
        self._send(alice_key, "greet2", ["c-at"])
        assert _texts(alice_key, ["c-at"]) == {"c-at": ("Welt", "hi")}

    def test_a_template_that_fails_gives_the_sends_text(self, alice_key, settings, caplog):
        settings.TEMPLATE_LOOP_LIMIT = 5
        loop = "{% for i in (1..100) %}x{% endfor %}"
        _type(alice_key, "loopy2", {"de": {"title": "T {{ title }}", "message": loop}})
        alice_key.put("/api/v1/users/loop-2", {"locale": "de"})
        self._send(alice_key, "loopy2", ["loop-2"], message="own")
        with caplog.at_level(logging.WARNING):
            assert self._send(alice_key, "loopy2", ["loop-2"], message="own") == 1
        assert _texts(alice_key, ["loop-2"]) == {"loop-2": ("T Welt", "own")}
        assert "locales.de.message" in caplog.text

    def test_per_user_and_local_format_templates_keep_rendering_per_group(self, alice_key):
        _type(alice_key, "greet3", {"de": {"message": "Hallo {{ user.name }}"}})
        alice_key.put("/api/v1/users/pu-1", {"locale": "de", "name": "Ada"})
        self._send(alice_key, "greet3", ["pu-1"])
        assert self._send(alice_key, "greet3", ["pu-1"]) == 2
        assert _texts(alice_key, ["pu-1"]) == {"pu-1": ("Welt", "Hallo Ada")}


class TestTemplateNames:
    """What a template reads, from python-liquid's analysis (``templating.template_names``)."""

    @pytest.mark.parametrize(
        ("source", "reads_user"),
        [
            ("{{ user.name }}", True),
            ("{{ data[user.id] }}", True),
            ("{% for x in user.tags %}{{ x }}{% endfor %}", True),
            ("{{ username }}", False),
            ("user text, {{ 'user' }}, {{ data.user }}", False),
            ("{% assign user_name = 'x' %}{{ user_name }}", False),
        ],
    )
    def test_user(self, source, reads_user):
        assert ("user" in template_names(source).globals) is reads_user

    def test_local_filters(self):
        assert "date_local" in template_names("{{ data.due | date_local }}").filters
        assert not template_names("date_local, {{ 'number_local' }}").filters

    def test_a_template_that_does_not_parse_reads_nothing(self):
        names = template_names("{{ user.name ")
        assert not names.globals
        assert not names.filters


class TestFilters:
    @pytest.mark.parametrize(
        ("locale", "zone", "expected"),
        [
            ("de-AT", "Europe/Vienna", "1. März 2026 | 00:30 | 1.234.567,891 | €\xa012,50"),
            ("en", "", "March 1, 2026 | 23:30 | 1,234,567.891 | €12.50"),
            ("xx", "No/Where", "March 1, 2026 | 23:30 | 1,234,567.891 | €12.50"),
        ],
    )
    def test_local_formats(self, locale, zone, expected):
        source = (
            "{{ data.day | date_local: 'long' }} | {{ data.due | date_local: 'HH:mm' }} | "
            "{{ data.n | number_local }} | {{ data.amount | currency_local: 'EUR' }}"
        )
        context = {
            "data": {"day": "2026-03-01", "due": "2026-03-01T23:30:00Z", "n": 1234567.891,
                     "amount": "12.5"}
        }  # fmt: skip
        assert render(source, context, html=False, locale=locale, timezone=zone) == expected

    def test_a_value_that_is_not_a_date_or_number_passes_through(self):
        got = render(
            "{{ x | date_local }} {{ x | number_local }} {{ 5 | currency_local: 'nope' }}",
            {"x": "soon"}, html=False,
        )  # fmt: skip
        assert got == "soon soon 5"


class TestTypeLocales:
    def test_saved_normalised_and_returned_as_saved(self, alice_key):
        response = alice_key.put(
            "/api/v1/types/loc", {"locales": {"de_at": {"title": "{{ title }}!"}, "FR": {}}}
        )
        assert response.status_code == 201, response.content
        assert response.json()["locales"] == {"de-AT": {"title": "{{ title }}!"}, "fr": {}}
        assert alice_key.get("/api/v1/types/loc").json()["locales"] == {
            "de-AT": {"title": "{{ title }}!"},
            "fr": {},
        }

    @pytest.mark.parametrize(
        ("locales", "path"),
        [
            ({"english please": {"title": "x"}}, ["english please"]),
            ({"xx-YY-ZZ": {}}, ["xx-YY-ZZ"]),
            ({"de-AT": {}, "de_at": {}}, ["de_at"]),
            ({"de": {"subject": "x"}}, ["de", "subject"]),
            ({"de": {"title": 5}}, ["de", "title"]),
            ({"de": {"message": "{% if %}"}}, ["de", "message"]),
            ({"de": {"email_html": "{{ x | no_such_filter }}"}}, ["de", "email_html"]),
            ({"de": {"title": "x" * 301}}, ["de", "title"]),
            ({f"de-{n:03d}": {} for n in range(51)}, []),
        ],
    )
    def test_invalid_locales_are_400_naming_the_field(self, alice_key, locales, path):
        response = alice_key.put("/api/v1/types/bad-loc", {"locales": locales})
        assert response.status_code == 400
        assert error_code(response) == "invalid"
        details = response.json()["error"]["details"][".".join(["locales", *path])]
        assert isinstance(details, list)
        assert details[0]
        assert alice_key.get("/api/v1/types/bad-loc").status_code == 404

    def test_a_body_echoing_a_get_is_accepted(self, alice_key):
        alice_key.put("/api/v1/types/echo", {"locales": {"de": {"title": "Hallo"}}})
        body = alice_key.get("/api/v1/types/echo").json()
        body["locales"]["fr"] = {"title": "Salut"}
        response = alice_key.put("/api/v1/types/echo", body)
        assert response.status_code == 200, response.content
        assert response.json()["locales"] == {"de": {"title": "Hallo"}, "fr": {"title": "Salut"}}
        assert response.json()["created_at"] == body["created_at"]


class TestUserLocales:
    def test_upsert_normalises_the_locale(self, alice_key):
        response = alice_key.put("/api/v1/users/n-1", {"locale": "de_at"})
        assert response.json()["locale"] == "de-AT"
        assert alice_key.put("/api/v1/users/n-1", {"locale": "ZH_hant_tw"}).json()["locale"] == (
            "zh-Hant-TW"
        )

    @pytest.mark.parametrize("locale", ["xx-AT", "de-AT-x", "english", "de_", 5])
    def test_an_invalid_locale_is_400_naming_it(self, alice_key, locale):
        response = alice_key.put("/api/v1/users/n-2", {"locale": locale})
        assert response.status_code == 400
        assert "locale" in response.json()["error"]["details"]

    def test_recipient_objects_normalise_and_update_locales(self, alice_key):
        alice_key.put("/api/v1/users/r-1", {"locale": "fr"})
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "plain", "recipients": [{"id": "r-1", "locale": "DE_ch"},
                                             {"id": "r-2", "locale": "pt_br"}],
             "message": "m"},
        )  # fmt: skip
        assert response.status_code == 202, response.content
        assert alice_key.get("/api/v1/users/r-1").json()["locale"] == "de-CH"
        assert alice_key.get("/api/v1/users/r-2").json()["locale"] == "pt-BR"

    @pytest.mark.parametrize(
        "items",
        [
            ["a", {"id": "b"}, {"id": "c", "locale": "de_at"}, {"id": "d", "locale": None},
             {"id": "e", "locale": ""}],
            [{"id": "f", "locale": "fr", "name": "F"}, "g", {"id": "h", "email": "h@x.test"}],
        ],
    )  # fmt: skip
    def test_recipient_objects_parse_as_each_would_alone(self, items):
        from notifications.serializers import RecipientsField, _recipient

        assert RecipientsField().to_internal_value(items) == [_recipient(i) for i in items]

    @pytest.mark.parametrize(
        "item",
        [{"id": "a", "locale": 5}, {"id": "", "locale": "de"}, {"id": "x\x00", "locale": "de"},
         {"id": "b", "locale": "not a tag!"}, {"id": "c", "locale": False}, {"id": 7},
         {"locale": "de"}, {"id": "d", "locale": "de", "extra": 1}, ["e"], "", None],
    )  # fmt: skip
    def test_an_invalid_recipient_gets_its_own_error_among_objects(self, item):
        from rest_framework.exceptions import ValidationError

        from notifications.serializers import RecipientsField, _recipient

        with pytest.raises(ValidationError) as raised:
            RecipientsField().to_internal_value([{"id": "ok", "locale": "de"}, item, "ok-2"])
        assert raised.value.detail == {1: [_recipient(item)]}

    def test_a_recipient_object_with_an_invalid_locale_is_400(self, alice_key):
        response = alice_key.post(
            "/api/v1/notifications",
            {"type": "plain", "recipients": [{"id": "r-3", "locale": "nope-nope"}],
             "message": "m"},
        )  # fmt: skip
        assert response.status_code == 400
        assert "locale" in response.json()["error"]["details"]["recipients"]["0"][0]


class TestMyPreferences:
    def test_an_end_user_sets_their_own_locale_and_time_zone(self, erin, alice_key):
        before = erin.get("/api/v1/me/preferences").json()
        assert before["locale"] == ""
        assert before["timezone"] == ""
        response = erin.put(
            "/api/v1/me/preferences", {"locale": "de_at", "timezone": "Europe/Vienna"}
        )
        assert response.status_code == 200, response.content
        body = response.json()
        assert (body["locale"], body["timezone"]) == ("de-AT", "Europe/Vienna")
        assert set(body) == {"channels", "types", "locale", "timezone"}
        user = alice_key.get("/api/v1/users/user-1").json()
        assert (user["locale"], user["timezone"]) == ("de-AT", "Europe/Vienna")

    def test_the_old_shape_still_works(self, erin):
        response = erin.put("/api/v1/me/preferences", {"channels": {"email": False}})
        assert response.status_code == 200
        assert response.json()["channels"]["email"] is False

    @pytest.mark.parametrize(
        "body", [{"locale": "nope-nope"}, {"timezone": "Mars/Olympus"}, {"locale": 7}]
    )
    def test_invalid_values_are_400_and_change_nothing(self, erin, body):
        response = erin.put("/api/v1/me/preferences", body)
        assert response.status_code == 400
        assert error_code(response) == "invalid"
        assert set(response.json()["error"]["details"]) == set(body)
        after = erin.get("/api/v1/me/preferences").json()
        assert (after["locale"], after["timezone"]) == ("", "")


def test_nothing_crosses_tenants(alice_key, bob_key, world):
    """Tenant B's type locales and users' locales are its own: a send by A to the same ids
    and type key uses A's."""
    _type(bob_key, "greet", {"de": {"message": "B: {{ message }}"}})
    bob_key.put("/api/v1/users/x-1", {"locale": "de"})
    alice_key.put("/api/v1/users/x-1", {"locale": "fr"})
    _type(alice_key, "greet", {"fr": {"message": "A: {{ message }}"}})
    alice_key.post(
        "/api/v1/notifications", {"type": "greet", "recipients": ["x-1"], "message": "m"}
    )
    bob_key.post("/api/v1/notifications", {"type": "greet", "recipients": ["x-1"], "message": "m"})
    assert [n["message"] for n in _inbox(alice_key, "x-1")] == ["A: m"]
    assert [n["message"] for n in _inbox(bob_key, "x-1")] == ["B: m"]
    with schema_context(world.tenant_a.schema_name):
        assert EndUser.objects.get(external_id="x-1").locale == "fr"
        assert Notification.objects.filter(message="B: m").count() == 0


# --- over the real web process: these commit, so each uses users of its own ---


@pytest.fixture
def alpha(web, world) -> Live:
    return Live(web, world.alice.host, world.alice.api_key)


def test_the_websocket_frame_and_rest_inbox_carry_the_resolved_texts(alpha):
    alpha.call("PUT", "/api/v1/types/live-loc", {"locales": LOCALES})
    users = {new_user(): "de-AT", new_user(): "fr", new_user(): ""}
    for external_id, locale in users.items():
        alpha.call("PUT", f"/api/v1/users/{external_id}", {"locale": locale})
    expected = {"de-AT": "Grüß Gott: live", "fr": "Bonjour, live", "": "live"}
    tokens = {external_id: alpha.token(external_id) for external_id in users}
    for external_id, locale in users.items():
        with alpha.socket(tokens[external_id]) as ws:
            assert frame(ws)["type"] == "unread_count"
            alpha.call(
                "POST", "/api/v1/notifications",
                {"type": "live-loc", "recipients": [external_id], "title": "Welt",
                 "message": "live"},
            )  # fmt: skip
            pushed = frames_until(ws, lambda f: f["type"] == "notification")[-1]["notification"]
        assert pushed["message"] == expected[locale]
        rest = alpha.call("GET", "/api/v1/me/notifications", token=tokens[external_id])
        assert rest["results"][0] == pushed


def test_one_send_to_several_locales_pushes_each_its_own_texts(alpha):
    """Twice: the server's first send of the type renders per group, the next resolves in the
    send's one statement (``pre_rendered``); both push each recipient their own texts."""
    alpha.call("PUT", "/api/v1/types/live-loc2", {"locales": LOCALES})
    at, fr = new_user(), new_user()
    alpha.call("PUT", f"/api/v1/users/{at}", {"locale": "de-AT"})
    alpha.call("PUT", f"/api/v1/users/{fr}", {"locale": "fr"})
    with alpha.socket(alpha.token(at)) as ws_at, alpha.socket(alpha.token(fr)) as ws_fr:
        frame(ws_at), frame(ws_fr)
        for message in ("first", "second"):
            alpha.call(
                "POST", "/api/v1/notifications",
                {"type": "live-loc2", "recipients": [at, fr], "title": "W", "message": message},
            )  # fmt: skip
            got_at = frames_until(ws_at, lambda f: f["type"] == "notification")[-1]
            got_fr = frames_until(ws_fr, lambda f: f["type"] == "notification")[-1]
            assert (got_at["notification"]["title"], got_at["notification"]["message"]) == (
                "Servus W",
                f"Grüß Gott: {message}",
            )
            assert (got_fr["notification"]["title"], got_fr["notification"]["message"]) == (
                "W",
                f"Bonjour, {message}",
            )
