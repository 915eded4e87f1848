"""End users in the dashboard: list and search, a user's detail, erasure with confirmation."""

from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from dashboard.templatetags.content_links import user_erase_url, user_url
from notifications.models import Delivery, EndUser, Notification, Preference
from tests.dashboard.conftest import log_in
from tests.dashboard.content_helpers import counted_get, dashboard, put_type, put_user, send
from tests.support.api import Caller
from tests.support.browser import screenshot
from tests.support.push_service import Browser, b64url

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"
ODD_ID = "team/a%b c?d#e"


@pytest.fixture
def alice(world, db):
    return dashboard(world.tenant_a, world.alice.email)


def preferences(api: Caller, external_id: str, body: dict) -> None:
    token = api.post(f"/api/v1/users/{external_id}/token").json()["token"]
    response = Caller(host=api.host, token=token).put("/api/v1/me/preferences", body)
    assert response.status_code == 200, response.content


def listed(response) -> list[str]:
    return re.findall(r'<a class="mono" href="/dashboard/users/([^"]+)"', response.content.decode())


# --- In-process ---------------------------------------------------------------------------------


def test_the_list_costs_the_same_queries_for_3_or_40_users(alice, alice_key):
    for index in range(3):
        put_user(alice_key, f"qc-user-{index}")
    _page, few = counted_get(alice, "/dashboard/users/")
    for index in range(3, 40):
        put_user(alice_key, f"qc-user-{index}")
    page, many = counted_get(alice, "/dashboard/users/")
    assert many == few
    assert len(listed(page)) == 30  # one page
    assert 'rel="next"' in page.content.decode()


def test_search_matches_id_and_email_prefixes_and_any_part_of_a_name(alice, alice_key):
    put_user(alice_key, "srch-ann", name="Ann Smith", email="ann@corp.example")
    put_user(alice_key, "srch-bo", name="Bo Jansen", email="bo@other.example")
    put_user(alice_key, "zz-cy", name="Cy", email="SRCH-CY@upper.example")

    def found(q: str) -> set[str]:
        return set(listed(alice.get("/dashboard/users/", {"q": q})))

    assert found("srch-") == {"srch-ann", "srch-bo", "zz-cy"}  # ids, and an email
    assert found("jans") == {"srch-bo"}
    assert found("bo@") == {"srch-bo"}
    assert found("corp") == set()  # email matches from its start only
    empty = alice.get("/dashboard/users/", {"q": "no-such-user-anywhere"})
    assert "No users match" in empty.content.decode()
    too_long = alice.get("/dashboard/users/", {"q": "x" * 201})
    assert too_long.status_code == 400


def test_a_user_detail_shows_inbox_preferences_and_deliveries_in_fixed_queries(
    alice, alice_key, django_assert_max_num_queries
):
    put_type(alice_key, "ud.mail", channels=["in_app", "email"])
    put_type(alice_key, "ud.quiet")
    person = {"id": "ud-person", "email": "ud@example.com", "name": "Uma Detail"}
    send(alice_key, "ud.mail", [person], title="First")
    preferences(alice_key, "ud-person", {"types": {"ud.quiet": {"email": False}}})
    _page, few = counted_get(alice, user_url("ud-person"))
    for index in range(25):
        send(alice_key, "ud.mail", ["ud-person"], title=f"Later {index}")
    with django_assert_max_num_queries(few):
        page = alice.get(user_url("ud-person"))
    body = page.content.decode()
    assert "Uma Detail" in body
    assert body.count('<span class="badge queued">unread</span>') == 20  # one inbox page
    assert "Later 24" in body
    assert "First" not in body  # on the next page
    assert re.search(r"ud\.quiet</a></th><td><span class=\"badge sent\">on", body)
    assert '<span class="badge failed">off</span>' in body  # ud.quiet's email switch
    assert body.count('<span class="badge queued">queued</span>') == 20  # deliveries page
    older = re.search(r'href="(\?before=\d+)"', body).group(1)
    assert "First" in alice.get(user_url("ud-person") + older).content.decode()


def test_a_user_detail_counts_their_push_subscriptions(alice, alice_key):
    token = alice_key.post("/api/v1/users/push-person/token").json()["token"]
    user = Caller(host=alice_key.host, token=token)
    for _ in range(2):
        browser = Browser()
        subscription = {
            "endpoint": f"https://8.8.8.8/push/{browser.token}",
            "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
        }
        assert user.post("/api/v1/me/push-subscriptions", subscription).status_code == 201
    body = alice.get(user_url("push-person")).content.decode()
    assert "<dt>Push subscriptions</dt><dd>2</dd>" in body


@pytest.mark.parametrize("external_id", [ODD_ID, "..", ".", "x/erase", "ünï 💡", "a//b/"])
def test_any_external_id_has_a_working_detail_page(alice, alice_key, world, external_id):
    send(alice_key, "odd", [{"id": external_id, "name": "Odd"}])
    response = alice.get(user_url(external_id))
    assert response.status_code == 200
    assert "Odd" in response.content.decode()
    assert "/" not in user_url(external_id).removeprefix("/dashboard/users/")


def test_erase_removes_the_user_and_everything_of_theirs(alice, alice_key, world):
    put_type(alice_key, "erase.mail", channels=["in_app", "email"])
    send(alice_key, "erase.mail", [{"id": ODD_ID, "email": "gone@example.com"}])
    send(alice_key, "erase.mail", [{"id": "stays", "email": "stays@example.com"}])
    preferences(alice_key, "stays", {"channels": {"email": False}})
    response = alice.post(user_erase_url(ODD_ID), {"erase": ODD_ID})
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/users/"
    with schema_context(world.tenant_a.schema_name):
        assert not EndUser.objects.filter(external_id=ODD_ID).exists()
        assert not Notification.objects.filter(recipient__external_id=ODD_ID).exists()
        assert not Delivery.objects.filter(recipient__external_id=ODD_ID).exists()
        assert EndUser.objects.filter(external_id="stays").exists()
        assert Preference.objects.filter(user__external_id="stays").exists()
    assert alice.post(user_erase_url(ODD_ID), {"erase": ODD_ID}).status_code == 404  # gone


def test_erase_is_post_only(alice, alice_key, world):
    put_user(alice_key, "keep-me")
    assert alice.get(user_erase_url("keep-me")).status_code == 404  # no user "keep-me/erase"
    with schema_context(world.tenant_a.schema_name):
        assert EndUser.objects.filter(external_id="keep-me").exists()


def test_the_locale_form_of_a_user_whose_id_ends_in_erase_erases_nobody(alice, alice_key, world):
    """``users/kit%2Ferase`` arrives decoded as ``users/kit/erase``: the erase route's path. Only
    the erase form's own field makes it erase; "kit" stays, and "kit/erase" gets its locale."""
    send(alice_key, "odd", ["kit", "kit/erase"])
    assert user_url("kit/erase") == "/dashboard/users/kit%2Ferase"
    response = alice.post(user_url("kit/erase"), {"locale": "fr", "timezone": ""})
    assert response.status_code == 302
    assert response["Location"] == user_url("kit/erase")
    assert stored_user(world, "kit/erase").locale == "fr"
    assert stored_user(world, "kit").locale == ""
    assert alice.post(user_erase_url("kit"), {"erase": "someone-else"}).status_code == 404
    assert stored_user(world, "kit").external_id == "kit"  # still there
    assert alice.post(user_erase_url("kit"), {"erase": "kit"}).status_code == 302
    with schema_context(world.tenant_a.schema_name):
        assert not EndUser.objects.filter(external_id="kit").exists()
        assert EndUser.objects.filter(external_id="kit/erase").exists()


def test_an_unknown_user_is_404(alice):
    assert alice.get(user_url("nobody-at-all")).status_code == 404


def stored_user(world, external_id):
    with schema_context(world.tenant_a.schema_name):
        return EndUser.objects.get(external_id=external_id)


def test_an_admin_sets_a_users_locale_normalised_and_time_zone(alice, alice_key, world):
    send(alice_key, "loc", [{"id": ODD_ID, "name": "Lena"}])  # an id the API cannot PUT
    page = alice.get(user_url(ODD_ID)).content.decode()
    assert 'name="locale"' in page
    assert '<option value="Europe/Vienna">' in page
    response = alice.post(user_url(ODD_ID), {"locale": "de_at", "timezone": "Europe/Vienna"})
    assert response.status_code == 302
    assert response["Location"] == user_url(ODD_ID)
    user = stored_user(world, ODD_ID)
    assert (user.locale, user.timezone, user.name) == ("de-AT", "Europe/Vienna", "Lena")
    assert alice.post(user_url(ODD_ID), {"locale": "", "timezone": ""}).status_code == 302
    assert (stored_user(world, ODD_ID).locale, stored_user(world, ODD_ID).timezone) == ("", "")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"locale": "not a tag", "timezone": ""}, "Not a valid language tag"),
        ({"locale": "qq-ZZ", "timezone": ""}, "Not a valid language tag"),
        ({"locale": "de", "timezone": "Mars/Olympus"}, "Select a valid choice"),
        ({"locale": "x" * 65, "timezone": ""}, "at most 64 characters"),
    ],
)
def test_a_bad_locale_or_time_zone_is_refused_on_its_field(
    alice, alice_key, world, fields, message
):
    put_user(alice_key, "loc-user", locale="fr", timezone="Europe/Paris")
    response = alice.post(user_url("loc-user"), fields)
    assert response.status_code == 400
    body = response.content.decode()
    assert "Nothing was saved" in body
    assert message in body
    user = stored_user(world, "loc-user")
    assert (user.locale, user.timezone) == ("fr", "Europe/Paris")


def test_another_tenants_admin_cannot_change_a_users_locale(world, alice_key, db):
    put_user(alice_key, "loc-private", locale="fr")
    bob = dashboard(world.tenant_b, world.bob.email)
    response = bob.post(user_url("loc-private"), {"locale": "de", "timezone": ""})
    assert response.status_code == 404
    assert stored_user(world, "loc-private").locale == "fr"


# --- In the browser ------------------------------------------------------------------------------


def no_dialogs(page) -> list[str]:
    opened: list[str] = []

    def record(dialog):
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def test_list_search_and_open_a_user(page, make_site):
    site = make_site("dash-users")
    put_type(site.api, "welcome", channels=["in_app", "email"])
    people = [
        {"id": "u-1001", "name": "Grace Hopper", "email": "grace@navy.example"},
        {"id": "u-1002", "name": XSS, "email": "xss@example.com"},
        {"id": ODD_ID, "name": "Odd Id", "email": "odd@example.com"},
        {"id": "u-2001", "name": "Alan Turing", "email": "alan@example.com"},
    ]
    for person in people:
        send(site.api, "welcome", [person], title=f"Welcome {person['name']}")
    preferences(site.api, "u-1002", {"types": {"welcome": {"email": False}}})
    dialogs = no_dialogs(page)

    log_in(page, site)
    page.get_by_role("link", name="Users").click()
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.get_by_role("cell", name=XSS)).to_be_visible()
    screenshot(page, "dash-users")

    page.get_by_role("searchbox", name="Search").fill("u-10")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(2)
    page.get_by_role("searchbox", name="Search").fill("turing")
    page.get_by_role("button", name="Search").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("u-2001")

    page.get_by_role("link", name="Clear").click()
    page.get_by_role("link", name=ODD_ID).click()
    expect(page.get_by_role("heading", name="Odd Id")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text(ODD_ID)

    page.go_back()
    page.get_by_role("link", name="u-1002").click()
    expect(page.get_by_role("heading", name=XSS, exact=True)).to_be_visible()
    expect(page.get_by_role("row", name=re.compile("^welcome"))).to_contain_text("off")
    inbox = page.locator("section", has=page.get_by_role("heading", name="Inbox"))
    expect(inbox).to_contain_text(f"Welcome {XSS}")
    screenshot(page, "dash-user-detail")
    assert dialogs == []


def test_erase_a_user_after_confirming(page, make_site):
    site = make_site("dash-erase")
    put_type(site.api, "bye", channels=["in_app", "email"])
    send(site.api, "bye", [{"id": ODD_ID, "email": "leaving@example.com", "name": "Leaving"}])
    send(site.api, "bye", ["staying"])
    log_in(page, site)
    page.goto(site.url(user_url(ODD_ID)))

    page.get_by_role("button", name="Erase user").click()
    dialog = page.locator("dialog#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Erase {ODD_ID}?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    with schema_context(site.tenant.schema_name):
        assert EndUser.objects.filter(external_id=ODD_ID).exists()

    page.get_by_role("button", name="Erase user").click()
    dialog.get_by_role("button", name="Erase").click()
    expect(page).to_have_url(site.url("/dashboard/users/"))
    expect(page.get_by_role("status")).to_contain_text(f"Erased user {ODD_ID}")
    expect(page.locator("table tbody tr")).to_have_count(1)
    with schema_context(site.tenant.schema_name):
        assert not EndUser.objects.filter(external_id=ODD_ID).exists()
        assert not Notification.objects.filter(recipient__external_id=ODD_ID).exists()
        assert not Delivery.objects.filter(recipient__external_id=ODD_ID).exists()
        assert EndUser.objects.filter(external_id="staying").exists()
