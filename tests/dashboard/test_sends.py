"""The send log, a send's detail and the test-send form.

In-process tests (Django's test client on tenant A's host) pin query counts and check every
filter and refusal; browser tests drive the real pages on committed tenants of their own.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from notifications.models import Notification, Send
from tests.billing.test_quotas import plan_with
from tests.dashboard.conftest import log_in
from tests.dashboard.content_helpers import counted_get, dashboard, put_type, put_user, send
from tests.support.browser import screenshot

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"

# --- In-process: queries, filters, refusals ----------------------------------------------------


@pytest.fixture
def alice(world, db):
    return dashboard(world.tenant_a, world.alice.email)


def queries_for(client, path, data=None) -> int:
    return counted_get(client, path, data)[1]


def test_the_log_costs_the_same_queries_for_a_page_of_2_or_25_sends(
    alice, alice_key, django_assert_max_num_queries
):
    put_type(alice_key, "qc.mail", channels=["in_app", "email"])
    for index in range(2):
        send(alice_key, "qc.mail", [{"id": f"qc-{index}", "email": f"qc{index}@example.com"}])
    few = queries_for(alice, "/dashboard/notifications/")
    for index in range(30):
        send(alice_key, "qc.mail", [{"id": f"qc-{index}", "email": f"qc{index}@example.com"}])
    assert queries_for(alice, "/dashboard/notifications/") == few
    filtered = {"type": "qc.mail", "recipient": "qc-1", "q": "Hello", "status": "accepted"}
    with django_assert_max_num_queries(few + 2):  # + the type and recipient lookups
        assert alice.get("/dashboard/notifications/", filtered).status_code == 200


def test_a_send_detail_costs_the_same_queries_for_1_or_60_recipients(
    alice, alice_key, django_assert_max_num_queries
):
    put_type(alice_key, "qc.detail", channels=["in_app", "email"])
    small = send(alice_key, "qc.detail", [{"id": "d-0", "email": "d0@example.com"}])
    recipients = [{"id": f"d-{i}", "email": f"d{i}@example.com"} for i in range(60)]
    large = send(alice_key, "qc.detail", recipients)
    few = queries_for(alice, f"/dashboard/notifications/{small}")
    with django_assert_max_num_queries(few):
        page = alice.get(f"/dashboard/notifications/{large}")
    body = page.content.decode()
    assert body.count('href="/dashboard/users/d-') == 50  # one page of recipients
    next_page = re.search(r'href="\?after=(\d+)"', body)
    assert next_page
    rest = alice.get(f"/dashboard/notifications/{large}", {"after": next_page.group(1)})
    assert rest.content.decode().count('href="/dashboard/users/d-') == 10


def test_the_log_pages_newest_first_without_gaps(alice, alice_key):
    put_type(alice_key, "paging")
    ids = [send(alice_key, "paging", ["pager"], title=f"P{i}") for i in range(28)]
    first = alice.get("/dashboard/notifications/", {"type": "paging"}).content.decode()
    shown = [int(i) for i in re.findall(r'href="/dashboard/notifications/(\d+)"', first)]
    assert shown == sorted(ids, reverse=True)[:25]
    after = re.search(r'href="(\?[^"]*before=\d+)"', first).group(1).replace("&amp;", "&")
    second = alice.get(f"/dashboard/notifications/{after}").content.decode()
    rest = [int(i) for i in re.findall(r'href="/dashboard/notifications/(\d+)"', second)]
    assert rest == sorted(ids, reverse=True)[25:]
    assert "Newest" in second


def test_each_filter_narrows_the_log(alice, alice_key, world):
    put_type(alice_key, "f.one")
    put_type(alice_key, "f.two")
    one = send(alice_key, "f.one", ["f-ann"], title="Invoice ready")
    two = send(alice_key, "f.two", ["f-bob"], message="Your parcel shipped")
    later = send(alice_key, "f.two", ["f-ann"], send_at="2999-01-01T00:00:00Z")

    def listed(**params) -> set[int]:
        response = alice.get("/dashboard/notifications/", params)
        assert response.status_code == 200, response.content[:400]
        found = re.findall(r'href="/dashboard/notifications/(\d+)"', response.content.decode())
        return {int(i) for i in found} & {one, two, later}

    assert listed() == {one, two, later}
    assert listed(type="f.one") == {one}
    assert listed(recipient="f-ann") == {one}  # the scheduled one reaches nobody yet
    assert listed(recipient="f-bob") == {two}
    assert listed(status="scheduled") == {later}
    assert listed(q="invoice") == {one}
    assert listed(q="PARCEL") == {two}
    today = timezone.now().date()
    assert listed(created_from=today.isoformat()) == {one, two, later}
    assert listed(created_to=(today - timedelta(days=1)).isoformat()) == set()


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"recipient": "nobody-here"}, "recipient", "No user has this id."),
        ({"type": "no-such-type"}, "type", "Select a valid choice"),
        ({"status": "lost"}, "status", "Select a valid choice"),
        ({"created_from": "2024-13-40"}, "created_from", "Enter a valid date"),
        ({"created_from": "2024-05-02", "created_to": "2024-05-01"}, "created_to", "on or after"),
        ({"q": "x" * 201}, "q", "at most 200 characters"),
        ({"q": "nul\x00byte"}, "q", "Null characters are not allowed"),
    ],
)
def test_bad_filters_are_explained_with_a_400(alice, params, field, message):
    response = alice.get("/dashboard/notifications/", params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Fix the filters" in response.content.decode()


def test_a_malformed_page_link_shows_the_first_page_with_a_notice(alice):
    response = alice.get("/dashboard/notifications/", {"before": "abc"})
    assert response.status_code == 200
    assert "That page link is not valid" in response.content.decode()


@pytest.mark.parametrize("send_id", ["987654321", "99999999999999999999999"])
def test_an_unknown_send_is_404(alice, send_id):
    assert alice.get(f"/dashboard/notifications/{send_id}").status_code == 404
    assert alice.post(f"/dashboard/notifications/{send_id}/cancel").status_code == 404


def test_a_scheduled_send_is_cancelled_once(alice, alice_key, world):
    put_type(alice_key, "later")
    scheduled = send(alice_key, "later", ["c-1"], send_at="2999-01-01T00:00:00Z")
    detail = alice.get(f"/dashboard/notifications/{scheduled}").content.decode()
    assert "Cancel send" in detail
    assert "c-1" in detail  # a scheduled send's recipients are the ones it holds
    response = alice.post(f"/dashboard/notifications/{scheduled}/cancel")
    assert response.status_code == 302
    with schema_context(world.tenant_a.schema_name):
        assert Send.objects.get(pk=scheduled).status == Send.Status.CANCELLED
    again = alice.client.post(
        f"/dashboard/notifications/{scheduled}/cancel", HTTP_HOST=alice.host, follow=True
    )
    assert "Only a scheduled send that is not yet due can be cancelled." in again.content.decode()
    assert "Cancel send" not in again.content.decode()
    assert "Cancelled on request before it was due." in again.content.decode()


def test_the_test_form_sends_through_the_api_path_once(alice, alice_key, world):
    put_type(alice_key, "form.ok", channels=["in_app"])
    put_user(alice_key, "form-user", name="Form User")
    form = alice.get("/dashboard/notifications/test").content.decode()
    key = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', form).group(1)
    body = {
        "recipient": "form-user",
        "type": "form.ok",
        "title": "Hi",
        "message": "Line 1\r\nLine 2",
        "url": "https://example.com/x",
        "idempotency_key": key,
    }
    first = alice.post("/dashboard/notifications/test", body)
    assert first.status_code == 302
    send_id = int(first["Location"].rsplit("/", 1)[1])
    again = alice.post("/dashboard/notifications/test", body)  # a double click
    assert again["Location"] == first["Location"]
    with schema_context(world.tenant_a.schema_name):
        sent = Send.objects.get(pk=send_id)
        assert sent.message == "Line 1\nLine 2"
        assert sent.created_by.startswith("dashboard:")
        assert Notification.objects.filter(send=sent, recipient__external_id="form-user").exists()


@pytest.mark.parametrize(
    ("change", "field_error"),
    [
        ({"recipient": "no-such-user"}, "No user has this id."),
        ({"recipient": ""}, "This field is required."),
        ({"message": ""}, "This field is required."),
        ({"url": "javascript:alert(1)"}, "Use an http(s) URL."),
        ({"type": "not-a-type"}, "Select a valid choice"),
        ({"channels": ["fax"]}, "Select a valid choice"),
        ({"title": "t" * 301}, "at most 300 characters"),
        ({"idempotency_key": "nope"}, "reload the page"),
    ],
)
def test_bad_test_sends_show_field_errors_and_write_nothing(
    alice, alice_key, world, change, field_error
):
    put_type(alice_key, "form.bad")
    put_user(alice_key, "form-bad-user")
    with schema_context(world.tenant_a.schema_name):
        before = Send.objects.count()
    body = {
        "recipient": "form-bad-user",
        "type": "form.bad",
        "message": "m",
        "idempotency_key": "a" * 32,
        **change,
    }
    response = alice.post("/dashboard/notifications/test", body)
    assert response.status_code == 400
    assert field_error in response.content.decode()
    with schema_context(world.tenant_a.schema_name):
        assert Send.objects.count() == before


def test_a_test_send_over_the_quota_is_a_form_error_not_a_500(alice, alice_key, world):
    put_type(alice_key, "form.quota")
    put_user(alice_key, "quota-user")
    plan_with(world.tenant_a, notifications=0)
    body = {
        "recipient": "quota-user",
        "type": "form.quota",
        "message": "m",
        "idempotency_key": "b" * 32,
    }
    response = alice.post("/dashboard/notifications/test", body)
    assert response.status_code == 400
    assert "would pass your plan&#x27;s monthly quota" in response.content.decode()


def test_recipient_suggestions_match_the_start_of_ids(alice, alice_key):
    put_user(alice_key, "sugg-one", name="Sue")
    put_user(alice_key, "sugg-two", email="two@example.com")
    put_user(alice_key, "other")
    found = alice.get("/dashboard/notifications/test/recipients", {"q": "sugg-"}).json()
    assert [row["id"] for row in found["results"]] == ["sugg-two", "sugg-one"]
    assert found["results"][1]["name"] == "Sue"


# --- In the browser ------------------------------------------------------------------------------


def no_dialogs(page) -> list[str]:
    """Record every JavaScript dialog (an executed XSS payload would open one)."""
    opened: list[str] = []

    def record(dialog):
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def test_an_admin_sends_a_test_notification_and_follows_it_in_the_log(page, make_site):
    site = make_site("dash-sends")
    put_type(site.api, "comment.created", channels=["in_app", "email"])
    put_user(site.api, "ada", name="Ada Lovelace", email="ada@example.com")
    put_user(site.api, "bob", name="Bob")
    send(site.api, "comment.created", ["bob"], title="Earlier one")
    dialogs = no_dialogs(page)

    log_in(page, site)
    page.goto(site.url("/dashboard/notifications/test"))
    page.get_by_label("Recipient").fill("ad")
    # sends.js fills the suggestions with the users whose id starts so
    expect(page.locator("#recipient-options option")).to_have_count(1)
    expect(page.locator("#recipient-options option")).to_have_attribute("value", "ada")
    page.get_by_label("Type").select_option("comment.created")
    page.get_by_label("Title").fill(XSS)
    page.get_by_label("Message").fill("Grace replied to your comment.")
    page.get_by_label("Link").fill("https://app.example.com/c/1")
    page.get_by_label("Recipient").fill("ada")
    screenshot(page, "dash-test-send")
    page.get_by_role("button", name="Send notification").click()

    expect(page).to_have_url(re.compile(r"/dashboard/notifications/\d+$"))
    expect(page.get_by_role("status")).to_contain_text("Test notification sent to ada.")
    expect(page.get_by_role("heading", name=XSS)).to_be_visible()  # the title, as text
    recipients = page.locator("section", has=page.get_by_role("heading", name="Recipients"))
    expect(recipients.get_by_role("row", name=re.compile("ada"))).to_contain_text("unread")
    expect(recipients.get_by_role("row", name=re.compile("ada"))).to_contain_text("queued")
    screenshot(page, "dash-send-detail")

    page.get_by_role("link", name="Notifications", exact=True).first.click()
    rows = page.locator("table.send-log tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text(XSS)
    expect(rows.first).to_contain_text("comment.created")
    expect(rows.nth(1)).to_contain_text("Earlier one")
    screenshot(page, "dash-notifications")
    assert dialogs == []


def test_search_and_filter_the_log_in_the_browser(page, make_site):
    site = make_site("dash-filters")
    put_type(site.api, "invoice.paid")
    put_type(site.api, "parcel.shipped")
    send(site.api, "invoice.paid", ["ann"], title="Invoice 1001 paid")
    send(site.api, "parcel.shipped", ["ann", "cy"], title="Parcel on its way")
    send(site.api, "parcel.shipped", ["cy"], title="Another parcel")
    log_in(page, site)
    page.goto(site.url("/dashboard/notifications/"))
    rows = page.locator("table.send-log tbody tr")
    expect(rows).to_have_count(3)

    page.get_by_label("Type").select_option("parcel.shipped")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(2)
    page.get_by_label("Recipient id").fill("ann")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Parcel on its way")

    page.get_by_role("link", name="Clear").click()
    page.get_by_role("searchbox", name="Search").fill("invoice")
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Invoice 1001 paid")

    page.get_by_label("Recipient id").fill("nobody")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No user has this id.")).to_be_visible()


def test_the_send_page_reports_what_the_api_reports(alice, alice_key, erin):
    put_type(alice_key, "report.skip")
    erin.put("/api/v1/me/preferences", {"types": {"report.skip": {"in_app": False}}})
    released = send(alice_key, "report.skip", ["user-1", "user-2"])
    api = alice_key.get(f"/api/v1/sends/{released}").json()["channels"]
    assert api == {"in_app": {"sent": 1, "skipped_preference": 1}}
    page = alice.get(f"/dashboard/notifications/{released}").content.decode()
    assert re.search(r'class="badge sent">1 ', page)
    assert re.search(r'class="badge skipped_preference">1 ', page)

    scheduled = send(alice_key, "report.skip", ["user-1", "user-2"], send_at="2999-01-01T00:00:00Z")
    assert alice.post(f"/dashboard/notifications/{scheduled}/cancel").status_code == 302
    assert alice_key.get(f"/api/v1/sends/{scheduled}").json()["channels"] == {}
    page = alice.get(f"/dashboard/notifications/{scheduled}").content.decode()
    assert 'class="channel-counts"' not in page  # nothing sent, nothing skipped
    log = alice.get("/dashboard/notifications/", {"type": "report.skip"}).content.decode()
    assert log.count('class="channel-counts"') == 1  # the released send's row alone
