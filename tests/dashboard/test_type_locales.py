"""A type's per-locale texts in the dashboard: saving them with the service's rules, and the
preview of what a recipient with a given locale gets, each text labelled with its fallback."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from herald.domain import Invalid
from notifications.models import NotificationType
from notifications.services.types import type_locales_clean
from tests.dashboard.conftest import log_in
from tests.dashboard.content_helpers import dashboard, put_type
from tests.support.browser import screenshot


@pytest.fixture
def alice(world, db):
    return dashboard(world.tenant_a, world.alice.email)


def locale_forms(*blocks: dict[str, str], initial: int = 0) -> dict[str, str]:
    """The locale formset's fields as the editor posts them."""
    fields = {"locales-TOTAL_FORMS": str(len(blocks)), "locales-INITIAL_FORMS": str(initial)}
    for index, block in enumerate(blocks):
        fields.update({f"locales-{index}-{name}": value for name, value in block.items()})
    return fields


def type_form(*blocks: dict[str, str], **changes: str) -> dict[str, object]:
    return {
        "key": "order.shipped",
        "name": "Order shipped",
        "channels": ["in_app", "email"],
        "email_subject": "",
        "email_text": "",
        "email_html": "",
        **locale_forms(*blocks),
        **changes,
    }


def stored(world, key="order.shipped"):
    with schema_context(world.tenant_a.schema_name):
        return NotificationType.objects.filter(key=key).first()


def test_locales_are_saved_normalised_and_can_be_removed(alice, world):
    response = alice.post(
        "/dashboard/types/new",
        type_form(
            {"tag": "de_at", "title": "Hallo {{ user.name }}", "message": ""},
            {"tag": "fr", "email_subject": "Commande {{ data.order }}"},
            {"tag": ""},  # the blank "add a locale" block
        ),
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert stored(world).locales == {
        "de-AT": {"title": "Hallo {{ user.name }}"},
        "fr": {"email_subject": "Commande {{ data.order }}"},
    }
    page = alice.get("/dashboard/types/order.shipped").content.decode()
    assert "Hallo {{ user.name }}" in page
    assert 'value="de-AT"' in page
    listed = alice.get("/dashboard/types/").content.decode()
    assert '<span class="badge mono">de-AT</span> <span class="badge mono">fr</span>' in listed

    edit = {
        "name": "Order shipped",
        "channels": ["in_app"],
        **locale_forms(
            {"tag": "de-AT", "title": "Hallo {{ user.name }}", "DELETE": "on"},
            {"tag": "fr", "email_subject": "Votre commande"},
            {"tag": ""},
            initial=2,
        ),
    }
    assert alice.post("/dashboard/types/order.shipped", edit).status_code == 302
    assert stored(world).locales == {"fr": {"email_subject": "Votre commande"}}


@pytest.mark.parametrize(
    ("blocks", "field", "message"),
    [
        ([{"tag": "xx-!!", "title": "Hi"}], "tag", "Not a valid language tag"),
        ([{"tag": "qq", "title": "Hi"}], "tag", "Not a valid language tag"),  # no such language
        ([{"tag": "", "title": "Hallo"}], "tag", "Name the locale"),
        (
            [{"tag": "de_at", "title": "A"}, {"tag": "DE-at", "title": "B"}],
            "tag",
            "de-AT is here twice",
        ),
        ([{"tag": "de", "title": "{% if %}"}], "title", "Template syntax error"),
        ([{"tag": "de", "email_html": "{{ x | nosuchfilter }}"}], "email_html", "Unknown filter"),
        ([{"tag": "de", "email_subject": "s" * 301}], "email_subject", "at most 300 characters"),
    ],
)
def test_bad_locales_are_errors_on_their_field_and_nothing_is_saved(
    alice, world, blocks, field, message
):
    response = alice.post("/dashboard/types/new", type_form(*blocks))
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was saved" in body
    index = len(blocks) - 1
    # The message sits in the block of that field: after its input, before the next field's.
    start = body.index(f'name="locales-{index}-{field}"')
    assert message in body[start : start + 1500].replace("&#x27;", "'")
    assert stored(world) is None


def test_the_service_refuses_bad_locales_with_details_per_field():
    with pytest.raises(Invalid) as refused:
        type_locales_clean(
            {
                "de_at": {"title": "ok"},
                "DE-AT": {"title": "again"},
                "not a tag": {"title": "x"},
                "fr": {"subtitle": "x", "message": "{% for %}", "title": 3},
            }
        )
    assert set(refused.value.details) == {
        "locales.DE-AT",
        "locales.not a tag",
        "locales.fr.subtitle",
        "locales.fr.message",
        "locales.fr.title",
    }
    # kept as given, keys normalised (a blank text resolves as absent)
    assert type_locales_clean({"pt_br": {"title": "Olá", "message": ""}, "de": {}}) == {
        "pt-BR": {"title": "Olá", "message": ""},
        "de": {},
    }


def preview(client, locale, **fields):
    body = {
        "key": "order.shipped",
        "email_subject": "",
        "email_text": "",
        "email_html": "",
        "sample_title": "Parcel",
        "sample_message": "It left the depot.",
        "sample_url": "",
        "sample_data": '{"order": "A-7"}',
        "preview_locale": locale,
        **fields,
    }
    return client.post("/dashboard/types/preview?format=json", body)


LOCALES = locale_forms(
    {"tag": "de-AT", "title": "Servus {{ user.name }}: {{ title }}"},
    {"tag": "de", "title": "Hallo {{ user.name }}", "message": "Paket {{ data.order }}"},
    {"tag": "fr", "title": "Bonjour", "DELETE": "on"},  # being removed: not previewed
)


@pytest.mark.parametrize(
    ("locale", "title", "sources"),
    [
        (
            "de_at",
            "Servus Ada Lovelace: Parcel",
            ["from de-AT", "from de (language)", "from the type", "from the send's text"],
        ),
        (
            "de-CH",
            "Hallo Ada Lovelace",
            ["from de (language)", "from de (language)", "from the type", "from the send's text"],
        ),
        (
            "de",
            "Hallo Ada Lovelace",
            ["from de", "from de", "from the type", "from the send's text"],
        ),
        ("fr", "Parcel", ["from the send's text", "from the send's text", "from the type"]),
        ("", "Parcel", ["from the send's text", "from the send's text", "from the type"]),
    ],
)
def test_the_preview_labels_where_each_text_came_from(alice, locale, title, sources):
    response = preview(alice, locale, email_subject="{{ title }} ({{ user.locale }})", **LOCALES)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == title
    labels = [body["sources"][name] for name in ("title", "message", "email_subject")]
    assert labels == sources[:3]
    if len(sources) > 3:
        assert body["sources"]["email_text"] == sources[3]
    # The email sees the resolved title, and the recipient's locale.
    assert body["subject"] == f"{title} ({body['locale']})"
    expected = "Paket A-7" if locale.startswith("de") else "It left the depot."
    assert body["message"] == expected


def test_a_bad_preview_locale_or_locale_template_is_explained(alice):
    bad = preview(alice, "xx-!!", **LOCALES)
    assert bad.status_code == 400
    assert "Not a valid language tag" in bad.json()["error"]
    broken = preview(alice, "de", **locale_forms({"tag": "de", "message": "{{ x | nosuch }}"}))
    assert broken.status_code == 400
    assert "message (from de)" in broken.json()["error"]


def test_the_saved_preview_and_the_editor_show_the_saved_locales(alice, alice_key, world):
    put_type(alice_key, "loc.saved")
    with schema_context(world.tenant_a.schema_name):
        NotificationType.objects.filter(key="loc.saved").update(
            locales={"en": {"title": "English {{ title }}"}}
        )
    page = alice.get("/dashboard/types/loc.saved").content.decode()
    assert "English Your report is ready" in page  # the sample recipient's locale is en
    assert "from en" in page


def test_another_tenants_admin_cannot_preview_or_save_locales_of_a_type(world, alice_key, db):
    put_type(alice_key, "loc.private")
    bob = dashboard(world.tenant_b, world.bob.email)
    body = {"channels": ["in_app"], **locale_forms({"tag": "de", "title": "x"})}
    assert bob.post("/dashboard/types/loc.private", body).status_code == 404
    assert bob.get("/dashboard/types/loc.private/preview").status_code == 404
    assert stored(world, "loc.private").locales == {}


# --- In the browser ------------------------------------------------------------------------------


def test_add_a_language_and_preview_it_for_a_regional_locale(page, make_site):
    site = make_site("dash-type-locales")
    put_type(site.api, "order.shipped", channels=["in_app", "email"])
    log_in(page, site)
    page.goto(site.url("/dashboard/types/order.shipped"))

    page.locator("[name=locales-0-tag]").fill("DE")
    page.locator("[name=locales-0-title]").fill("Hallo {{ user.name }}: {{ title }}")
    page.get_by_label("Recipient's locale").fill("de_at")
    expect(page.locator("#preview-title")).to_have_text("Hallo Ada Lovelace: Your report is ready")
    expect(page.locator("#source-title")).to_have_text("from de (language)")
    expect(page.locator("#source-message")).to_have_text("from the send's text")
    expect(page.locator("#preview-subject")).to_have_text(
        "Hallo Ada Lovelace: Your report is ready"
    )  # the default subject is the resolved title

    page.get_by_role("button", name="Add another locale").click()
    page.locator("[name=locales-1-tag]").fill("fr")
    page.locator("[name=locales-1-message]").fill("Votre {{ data.report }}")
    page.get_by_label("Recipient's locale").fill("fr-CA")
    expect(page.locator("#preview-message")).to_have_text("Votre March revenue")
    expect(page.locator("#source-message")).to_have_text("from fr (language)")
    expect(page.locator("#source-title")).to_have_text("from the send's text")

    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Type order.shipped saved.")
    expect(page.locator("legend", has_text="Locale de")).to_be_visible()
    screenshot(page, "dash-type-locales")
    with schema_context(site.tenant.schema_name):
        saved = NotificationType.objects.get(key="order.shipped")
        assert saved.locales == {
            "de": {"title": "Hallo {{ user.name }}: {{ title }}"},
            "fr": {"message": "Votre {{ data.report }}"},
        }


def test_a_refusal_of_the_service_lands_on_the_locale_field_it_names():
    from dashboard.forms_locales import locale_formset

    formset = locale_formset(locale_forms({"tag": "de_at", "title": "Hallo"}), {})
    assert formset.is_valid()
    assert formset.locales() == {"de-AT": {"title": "Hallo"}}  # blank fields left out
    shown = formset.apply_refusal(
        Invalid("No.", details={"locales.de_at.title": ["Too German."], "name": ["x"]})
    )
    assert shown
    assert formset.forms[0].errors == {"title": ["Too German."]}
    assert not formset.apply_refusal(Invalid("No.", details={"name": ["x"]}))
