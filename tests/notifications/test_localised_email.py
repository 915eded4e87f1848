"""Emails in the recipient's language: a real Celery worker sends to a real SMTP server.

The type's texts are resolved per recipient (exact locale, then its language, then the type's
own field, then the send's); ``Content-Language`` and Herald's ``<html lang dir>`` name the
language; Herald's own words (footer, digest headings, unsubscribe pages) are translated.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tests.notifications.email_support import (
    QUEUE,
    close_now,
    digest_type,
    email_type,
    send,
    settled,
    unique,
)
from tests.support.processes import http, running_worker, wait_until
from tests.support.smtp import smtp_sink

LOCALES = {
    "de-AT": {"email_subject": "AT: {{ title }}", "email_text": "AT-Text: {{ message }}"},
    "de": {
        "email_subject": "Hallo {{ user.name }}: {{ title }}",
        "title": "Neue Antwort",
        "message": "{{ user.name }}, Ada hat geantwortet",
    },
    "ar": {"email_subject": "AR {{ title }}"},
}


def _set_locales(world, key: str, locales: dict) -> None:
    from django_tenants.utils import tenant_context

    from notifications.models import NotificationType

    with tenant_context(world.tenant_a):
        assert NotificationType.objects.filter(key=key).update(locales=locales) == 1


def _recipient(api, name: str, locale: str) -> dict:
    """A user saved through the users API, with ``locale`` ("" for none)."""
    person = {"email": f"{unique(name.lower())}@example.com", "name": name, "locale": locale}
    external_id = unique("user")
    assert api.put(f"/api/v1/users/{external_id}", person).status_code in (200, 201)
    return {**person, "id": external_id}


def _ids(people) -> list[str]:
    return [person["id"] for person in people]


def _header(response, name: str) -> str | None:
    return {key.lower(): value for key, value in response.headers.items()}.get(name.lower())


def _html(message) -> str:
    return message.get_body(("html",)).get_content()


def _text(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_each_recipient_gets_the_texts_and_language_of_their_locale(alpha, world):
    key = email_type(alpha, email_subject="Type: {{ title }}")
    _set_locales(world, key, LOCALES)
    people = {
        "at": _recipient(alpha, "Anna", "de-AT"),
        "ch": _recipient(alpha, "Beat", "de-CH"),
        "ch2": _recipient(alpha, "Carla", "de-CH"),
        "fr": _recipient(alpha, "Dora", "fr"),
        "ar": _recipient(alpha, "Emad", "ar"),
        "none": _recipient(alpha, "Finn", ""),
    }
    plain = email_type(alpha)  # no email texts at all: the send's own
    _set_locales(world, plain, {})
    plain_de = _recipient(alpha, "Gerd", "de")
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        first = send(alpha, key, _ids(people.values()), title="New reply", channels=["email"])
        second = send(alpha, plain, _ids([plain_de]), title="New reply", channels=["email"])
        wait_until(lambda: settled(alpha, first, len(people)), timeout=30, what="sent")
        wait_until(lambda: settled(alpha, second, 1), timeout=30, what="sent")

    mail = {name: sink.to(person["email"])[0] for name, person in people.items()}
    # exact locale; the title and message from its language, as in-app
    assert mail["at"]["Subject"] == "AT: Neue Antwort"
    assert _text(mail["at"]).strip() == "AT-Text: Anna, Ada hat geantwortet"
    assert mail["at"]["Content-Language"] == "de-AT"
    assert '<html lang="de-AT">' in _html(mail["at"])
    # de-CH falls back to de, rendered per recipient
    assert mail["ch"]["Subject"] == "Hallo Beat: Neue Antwort"
    assert mail["ch2"]["Subject"] == "Hallo Carla: Neue Antwort"
    assert "Carla, Ada hat geantwortet" in _text(mail["ch2"])
    assert mail["ch"]["Content-Language"] == "de"
    assert '<html lang="de">' in _html(mail["ch"])
    # no fr texts: the type's own field, in the recipient's locale; Herald's words in English
    assert mail["fr"]["Subject"] == "Type: New reply"
    assert mail["fr"]["Content-Language"] == "fr"
    assert '<html lang="fr">' in _html(mail["fr"])
    assert "Stop these emails:" in _text(mail["fr"])
    # right to left
    assert mail["ar"]["Subject"] == "AR New reply"
    assert mail["ar"]["Content-Language"] == "ar"
    assert '<html lang="ar" dir="rtl">' in _html(mail["ar"])
    # no locale: the type's own field, English
    assert mail["none"]["Subject"] == "Type: New reply"
    assert mail["none"]["Content-Language"] == "en"
    assert '<html lang="en">' in _html(mail["none"])
    assert 'dir="rtl"' not in _html(mail["none"])
    assert "Unsubscribe</a> from these emails." in _html(mail["none"])
    # German footer and unsubscribe link text
    assert "Diese E-Mails abbestellen: https://" in _text(mail["ch"])
    for name in ("at", "ch"):
        assert ">abbestellen</a>" in _html(mail[name])
        assert "Unsubscribe" not in _html(mail[name])
    # a type without email texts: the send's own title and message, the recipient's language
    [gerd] = sink.to(plain_de["email"])
    assert gerd["Subject"] == "New reply"
    assert gerd["Content-Language"] == "de"
    assert _text(gerd).startswith("Ada replied\r\n")
    assert "Diese E-Mails abbestellen" in _text(gerd)


def test_an_email_with_an_in_app_copy_shows_its_stored_texts(alpha, world):
    from django_tenants.utils import tenant_context

    from notifications.models import Notification

    key = email_type(alpha)
    _set_locales(world, key, LOCALES)
    person = _recipient(alpha, "Anna", "de-AT")
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        send_id = send(alpha, key, [person["id"]], title="New reply")
        [row] = wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")
    with tenant_context(world.tenant_a):
        stored = Notification.objects.get(pk=row["notification"])
    [message] = sink.to(person["email"])
    assert message["Subject"] == f"AT: {stored.title}"
    assert stored.message in _text(message)


def test_a_digest_speaks_the_recipients_language(alpha, world):
    from notifications.tasks import close_due_digests

    key = digest_type(alpha)
    _set_locales(world, key, {"de": {"title": "DE {{ title }}", "message": "Ada antwortete"}})
    person = _recipient(alpha, "Anna", "de-AT")
    first = send(alpha, key, [person["id"]], title="One", batch_key="k")
    second = send(alpha, key, [person["id"]], batch_key="k")
    close_now(world.tenant_a)
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        close_due_digests.apply_async()
        for send_id in (first, second):
            wait_until(lambda s=send_id: settled(alpha, s, 1), timeout=30, what="digest sent")
    [digest] = sink.to(person["email"])
    assert digest["Subject"] == "2 neue Benachrichtigungen: DE"  # the latest item's title
    assert "- DE One: Ada antwortete" in _text(digest)
    assert digest["Content-Language"] == "de-AT"
    assert '<html lang="de-AT">' in _html(digest)
    assert "Diese E-Mails abbestellen" in _text(digest)


def test_unsubscribe_pages_speak_the_users_language(alpha, world, web):
    key = email_type(alpha)
    people = {
        "de": _recipient(alpha, "Anna", "de-AT"),
        "en": _recipient(alpha, "Bob", "en"),
        "none": _recipient(alpha, "Cleo", ""),
    }
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        send_id = send(alpha, key, _ids(people.values()), channels=["email"])
        wait_until(lambda: settled(alpha, send_id, len(people)), timeout=30, what="sent")
    paths = {
        name: urlsplit(sink.to(p["email"])[0]["List-Unsubscribe"].strip().strip("<>")).path
        for name, p in people.items()
    }
    host = {"Host": world.alice.host}
    german = {**host, "Accept-Language": "de-DE,de;q=0.9"}

    asked = http("GET", web.url + paths["de"], headers=host)
    assert asked.status == 200
    assert '<html lang="de">' in asked.body
    assert _header(asked, "Content-Language") == "de"
    assert "Abbestellen?" in asked.body
    assert "„Comment replies“-E-Mails von Alpha Corp abbestellen?" in asked.body
    assert ">Abbestellen</button>" in asked.body
    done = http("POST", web.url + paths["de"], headers=host, body={})
    assert done.status == 200
    assert "Sie erhalten keine „Comment replies“-E-Mails von Alpha Corp mehr." in done.body

    # a stored locale wins over the browser's
    asked = http("GET", web.url + paths["en"], headers=german)
    assert '<html lang="en">' in asked.body
    assert "Unsubscribe?" in asked.body
    assert ">Unsubscribe</button>" in asked.body
    done = http("POST", web.url + paths["en"], headers=german, body={})
    assert "You will no longer get" in done.body

    # no locale: the browser's language, else English
    assert "Abbestellen?" in http("GET", web.url + paths["none"], headers=german).body
    asked = http("GET", web.url + paths["none"], headers=host)
    assert "Unsubscribe?" in asked.body
    assert _header(asked, "Content-Language") == "en"
    done = http("POST", web.url + paths["none"], headers=host, body={})
    assert "You will no longer get" in done.body

    forged = http("GET", web.url + paths["de"][:-3] + "xyz", headers=german)
    assert forged.status == 404
    assert "Link ungültig" in forged.body


def test_dates_in_an_email_follow_the_recipients_locale_and_time_zone(alpha, world):
    key = email_type(alpha)
    subject = "Fällig {{ data.due | date_local: 'medium' }}, {{ data.n | number_local }}"
    _set_locales(world, key, {"de": {"email_subject": subject}})
    person = _recipient(alpha, "Anna", "de-AT")
    assert (
        alpha.put(f"/api/v1/users/{person['id']}", {"timezone": "Europe/Vienna"}).status_code == 200
    )
    with smtp_sink() as sink, running_worker(QUEUE, EMAIL_URL=sink.url):
        send_id = send(
            alpha, key, [person["id"]], data={"due": "2026-03-01T23:30:00Z", "n": 1234.5}
        )
        wait_until(lambda: settled(alpha, send_id, 1), timeout=30, what="sent")
    [message] = sink.to(person["email"])
    assert message["Subject"] == "Fällig 02.03.2026, 00:30:00, 1.234,5"
