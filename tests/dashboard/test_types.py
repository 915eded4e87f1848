"""Notification types in the dashboard: create and edit with the API's rules, the live preview
of their email templates, and the "send me a test email" button."""

from __future__ import annotations

import dataclasses
import re
import time

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.utils.html import escape
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from dashboard.services_content import email_test_counter_key
from dashboard.templatetags.content_links import type_url
from herald.redisio import shared_redis
from notifications.models import NotificationType
from tests.dashboard.conftest import log_in
from tests.dashboard.content_helpers import counted_get, dashboard, put_type
from tests.support.browser import screenshot
from tests.support.processes import free_port, running_web, wait_until
from tests.support.smtp import smtp_sink

XSS = "<img src=x onerror=alert(1)><script>alert(2)</script>"


@pytest.fixture
def alice(world, db):
    """Tenant A's admin, with a fresh allowance of test emails."""
    with schema_context(world.tenant_a.schema_name):
        admin = get_user_model().objects.get(email=world.alice.email)
    shared_redis().delete(email_test_counter_key(tenant_id=world.tenant_a.pk, admin_id=admin.pk))
    return dashboard(world.tenant_a, world.alice.email)


def type_form(**changes):
    return {
        "key": "order.shipped",
        "name": "Order shipped",
        "channels": ["in_app", "email"],
        "digest_window_seconds": "",
        "email_subject": "Order {{ data.order }} shipped",
        "email_text": "Hi {{ user.name }},\r\n{{ message }}\r\n",
        "email_html": "<p>Hi {{ user.name }}</p>",
        **changes,
    }


def stored(world, key):
    with schema_context(world.tenant_a.schema_name):
        return NotificationType.objects.filter(key=key).first()


# --- In-process ---------------------------------------------------------------------------------


def test_create_then_edit_a_type(alice, world):
    response = alice.post("/dashboard/types/new", type_form(critical="on"))
    assert response.status_code == 302
    assert response["Location"] == "/dashboard/types/order.shipped"
    created = stored(world, "order.shipped")
    assert created.name == "Order shipped"
    assert created.channels == ["in_app", "email"]
    assert created.critical is True
    assert created.digest_window_seconds is None
    # As the API stores it: line ends as a client sends them, nothing trimmed.
    assert created.email_text == "Hi {{ user.name }},\n{{ message }}\n"

    edit = alice.get("/dashboard/types/order.shipped").content.decode()
    assert "Order {{ data.order }} shipped" in edit
    changed = type_form(name="", channels=["email"], digest_window_seconds="3600")
    del changed["key"]
    assert alice.post("/dashboard/types/order.shipped", changed).status_code == 302
    edited = stored(world, "order.shipped")
    assert edited.name == "order.shipped"  # a blank name falls back to the key
    assert edited.channels == ["email"]
    assert edited.critical is False  # unticked
    assert edited.digest_window_seconds == 3600


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"key": "Bad Key"}, "1 to 100 lowercase letters"),
        ({"key": ""}, "This field is required."),
        ({"key": "x" * 101}, "at most 100 characters"),
        ({"channels": []}, "This field is required."),
        ({"channels": ["fax"]}, "Select a valid choice"),
        ({"digest_window_seconds": "30"}, "greater than or equal to 60"),
        ({"digest_window_seconds": "ten"}, "Enter a whole number."),
        ({"email_subject": "{% if %}"}, "Template syntax error"),
        ({"email_html": "{{ user.name | nosuchfilter }}"}, "Unknown filter: nosuchfilter"),
        ({"email_text": "{% include 'base.html' %}"}, "cannot include or render other templates"),
        ({"email_html": "{% debug %}"}, "unexpected tag &#x27;debug&#x27;"),
        ({"email_subject": "s" * 301}, "at most 300 characters"),
        ({"name": "n\x00ame"}, "Null characters are not allowed"),
    ],
)
def test_bad_input_shows_field_errors_and_writes_nothing(alice, world, changes, message):
    response = alice.post("/dashboard/types/new", type_form(**changes))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "Nothing was saved" in body
    assert stored(world, changes.get("key", "order.shipped")) is None


def test_a_key_that_exists_is_refused(alice, alice_key, world):
    put_type(alice_key, "taken.key", email_subject="Keep me")
    response = alice.post("/dashboard/types/new", type_form(key="taken.key"))
    assert response.status_code == 400
    assert "exists already" in response.content.decode()
    assert stored(world, "taken.key").email_subject == "Keep me"


def test_a_plan_without_digests_refuses_a_digest_window(world, bob_key, db):
    bob = dashboard(world.tenant_b, world.bob.email)  # tenant B is on the free plan
    put_type(bob_key, "weekly")
    response = bob.post(
        "/dashboard/types/weekly", {"channels": ["email"], "digest_window_seconds": "3600"}
    )
    assert response.status_code == 400
    assert "Your plan does not include digests" in response.content.decode()
    with schema_context(world.tenant_b.schema_name):
        assert NotificationType.objects.get(key="weekly").digest_window_seconds is None
    assert (
        "Your plan does not include digests" in bob.get("/dashboard/types/weekly").content.decode()
    )


def test_keys_named_like_pages_are_edited_at_their_own_url(alice, alice_key):
    put_type(alice_key, "new", email_subject="The type called new")
    assert type_url("new") == "/dashboard/types/new/edit"
    page = alice.get(type_url("new")).content.decode()
    assert "The type called new" in page
    assert 'href="/dashboard/types/new/edit"' in alice.get("/dashboard/types/").content.decode()
    assert "Create type" in alice.get("/dashboard/types/new").content.decode()


def test_the_list_costs_the_same_queries_for_2_or_60_types(alice, alice_key):
    for index in range(2):
        put_type(alice_key, f"qc.type.{index}")
    _page, few = counted_get(alice, "/dashboard/types/")
    for index in range(2, 60):
        put_type(alice_key, f"qc.type.{index}")
    page, many = counted_get(alice, "/dashboard/types/")
    assert many == few
    assert 'rel="next"' in page.content.decode()


def preview(client, **fields):
    body = {
        "key": "order.shipped",
        "email_subject": "",
        "email_text": "",
        "email_html": "",
        "sample_title": "Parcel",
        "sample_message": "It left the depot.",
        "sample_url": "https://shop.example/o/7",
        "sample_data": '{"order": "A-7", "items": [1, 2]}',
        **fields,
    }
    return client.post("/dashboard/types/preview?format=json", body)


def test_the_preview_renders_the_sample_as_the_worker_would(alice, world):
    response = preview(
        alice,
        email_subject="{{ data.order }} for {{ user.name }} ({{ type }})",
        email_text="{{ message }} {{ url }} {{ data.items | size }} {{ tenant.name }}",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["subject"] == "A-7 for Ada Lovelace (order.shipped)"
    assert body["text"] == f"It left the depot. https://shop.example/o/7 2 {world.tenant_a.name}"
    assert body["error"] is None
    blank = preview(alice).json()  # blank templates: Herald's defaults
    assert blank["subject"] == "Parcel"
    assert "Stop these emails: http" in blank["text"]


def test_the_preview_document_has_its_own_locked_down_policy(alice):
    body = {"email_html": f"<h1 style='color:red'>{{{{ user.name }}}}</h1>{XSS}"}
    response = alice.client.post("/dashboard/types/preview", body, HTTP_HOST=alice.host)
    assert response.status_code == 200
    assert "<h1 style='color:red'>Ada Lovelace</h1>" in response.content.decode()
    policy = response["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "sandbox" in policy
    assert "script-src" not in policy
    assert response["X-Frame-Options"] == "SAMEORIGIN"
    page = alice.get("/dashboard/types/new")
    assert page["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in page["Content-Security-Policy"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email_html": "{% for %}"}, "Template syntax error"),
        ({"email_text": "{% include 'x.html' %}"}, "cannot include or render other templates"),
        ({"email_subject": "{% url 'admin:index' %}"}, "unexpected tag 'url'"),
        ({"email_html": "{{ user.name | nosuchfilter }}"}, "unknown filter 'nosuchfilter'"),
        ({"sample_data": "{not json"}, "not valid JSON"),
        ({"sample_data": "[1, 2]"}, "must be a JSON object"),
        ({"email_html": "x" * 200_001}, "at most 200000 characters"),
    ],
)
def test_preview_errors_are_explained_not_500s(alice, fields, message):
    response = preview(alice, **fields)
    assert response.status_code == 400
    assert message in response.json()["error"]
    document = alice.client.post("/dashboard/types/preview", fields, HTTP_HOST=alice.host)
    assert document.status_code == 400
    assert "could not be rendered" in document.content.decode()


def test_the_template_help_shows_liquid_and_the_limits(alice):
    from dashboard.views.types import TEMPLATE_FILTERS
    from notifications.templating import compile_errors

    page = alice.get("/dashboard/types/new").content.decode()
    assert "Liquid syntax" in page
    assert "Django" not in page
    assert "10,000 loop turns in all, 256 KiB of output per template and 1 s" in page
    assert "user.locale" in page
    for example, _text in TEMPLATE_FILTERS:
        assert compile_errors(example) is None, example
        assert escape(example) in page


TIME_BOMB = "{% for a in (1..1000) %}" + '{% if "a" == "a" %}{% endif %}' * 3000 + "{% endfor %}"
LOOP_BOMB = "{% for a in (1..1000) %}{% for b in (1..1000) %}x{% endfor %}{% endfor %}"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"email_text": TIME_BOMB}, "email_text: render time limit reached"),
        ({"email_html": LOOP_BOMB}, "email_html: loop iteration limit reached"),
    ],
)
def test_the_preview_of_a_template_bomb_answers_at_once_with_the_limit(
    alice, settings, fields, message
):
    settings.TEMPLATE_RENDER_TIMEOUT_SECONDS = 0.5
    started = time.monotonic()
    response = preview(alice, **fields)
    assert time.monotonic() - started < 0.5 + 1.0  # the limit, plus parsing the bomb
    assert response.status_code == 400
    assert message in response.json()["error"]
    document = alice.client.post("/dashboard/types/preview", fields, HTTP_HOST=alice.host)
    assert document.status_code == 400
    assert message in document.content.decode()


def test_a_bomb_can_be_saved_but_its_test_email_says_why_it_failed(alice, alice_key, settings):
    put_type(alice_key, "mail.bomb", email_html=LOOP_BOMB)  # it parses
    response = alice.client.post(
        "/dashboard/types/mail.bomb/test-email", HTTP_HOST=alice.host, follow=True
    )
    assert "loop iteration limit reached" in response.content.decode()
    assert mail.outbox == []


def test_a_test_email_goes_to_the_admin_five_times_a_minute(alice, alice_key, world):
    put_type(alice_key, "mail.test", email_subject="{{ title }} for {{ user.name }}")
    url = "/dashboard/types/mail.test/test-email"
    for _attempt in range(5):
        response = alice.client.post(url, HTTP_HOST=alice.host, follow=True)
        assert "sent to alice@alpha.example.com" in response.content.decode()
    assert len(mail.outbox) == 5
    message = mail.outbox[0]
    assert message.subject == "[Test] Your report is ready for Ada Lovelace"
    assert message.to == ["alice@alpha.example.com"]
    assert message.extra_headers["X-Herald-Test"] == "1"
    refused = alice.client.post(url, HTTP_HOST=alice.host, follow=True)
    assert "5 test emails a minute" in refused.content.decode()
    assert len(mail.outbox) == 5


def test_an_unreachable_mail_server_is_a_flash_error_not_a_500(alice, alice_key, settings):
    put_type(alice_key, "mail.down")
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", free_port(), 2
    response = alice.client.post(
        "/dashboard/types/mail.down/test-email", HTTP_HOST=alice.host, follow=True
    )
    assert response.status_code == 200
    assert "The test email was not sent. The mail server did not accept it" in (
        response.content.decode()
    )


def test_a_test_email_of_a_broken_saved_template_says_so(alice, alice_key, world):
    put_type(alice_key, "mail.broken")
    with schema_context(world.tenant_a.schema_name):  # saved before validation existed
        NotificationType.objects.filter(key="mail.broken").update(email_text="{% if %}")
    response = alice.client.post(
        "/dashboard/types/mail.broken/test-email", HTTP_HOST=alice.host, follow=True
    )
    assert "The templates do not render" in response.content.decode()
    assert mail.outbox == []


# --- In the browser ------------------------------------------------------------------------------


def no_dialogs(page) -> list[str]:
    opened: list[str] = []

    def record(dialog):
        opened.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    return opened


def test_create_a_type_with_templates_and_watch_the_preview(page, make_site):
    site = make_site("dash-types", name="Acme Parcels")
    put_type(site.api, "existing.type", channels=["in_app"])
    dialogs = no_dialogs(page)
    log_in(page, site)
    page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="Types & templates"
    ).click()
    page.get_by_role("link", name="New type").click()

    frame = page.frame_locator("iframe[name=preview]")
    subject = page.locator("#preview-subject")
    text = page.locator("#preview-text")
    expect(subject).to_have_text("Your report is ready")  # the default subject, at first

    page.get_by_label("Key").fill("parcel.shipped")
    page.get_by_label("Name").fill("Parcel shipped")
    page.get_by_role("checkbox", name="Email", exact=True).check()
    page.locator("#id_email_subject").fill("{{ title }}, {{ user.name }}")
    expect(subject).to_have_text("Your report is ready, Ada Lovelace")
    page.locator("#id_email_text").fill("<script>alert(3)</script> {{ message }}")
    expect(text).to_contain_text("<script>alert(3)</script> The March revenue report")
    page.locator("#id_email_html").fill(
        f'<h1 style="color:#0f766e">Hello {{{{ user.name }}}}</h1><p>{{{{ data.report }}}}</p>{XSS}'
    )
    expect(frame.locator("h1")).to_have_text("Hello Ada Lovelace")
    expect(frame.locator("p")).to_have_text("March revenue")

    page.get_by_text("Sample notification for the preview").click()
    page.get_by_label("Data (JSON object)").fill('{"report": "Q3 <b>numbers</b>"}')
    expect(frame.locator("p")).to_have_text("Q3 <b>numbers</b>")  # escaped in HTML emails

    page.locator("#id_email_subject").fill("{% if %}")
    expect(page.locator("#preview-error")).to_contain_text("Template syntax error")
    expect(frame.locator("body")).to_contain_text("could not be rendered")
    page.locator("#id_email_subject").fill("{{ title }} · {{ tenant.name }}")
    expect(page.locator("#preview-error")).to_be_hidden()
    expect(subject).to_have_text("Your report is ready · Acme Parcels")

    page.get_by_role("button", name="Create type").click()
    expect(page).to_have_url(site.url("/dashboard/types/parcel.shipped"))
    expect(page.get_by_role("status")).to_contain_text("Type parcel.shipped created.")
    expect(page.locator("#id_email_html")).to_have_value(re.compile(re.escape(XSS)))
    expect(frame.locator("h1")).to_have_text("Hello Ada Lovelace")
    screenshot(page, "dash-type-edit")
    with schema_context(site.tenant.schema_name):
        created = NotificationType.objects.get(key="parcel.shipped")
        assert created.channels == ["in_app", "email"]
        assert created.email_subject == "{{ title }} · {{ tenant.name }}"

    page.get_by_role("navigation", name="Dashboard").get_by_role(
        "link", name="Types & templates"
    ).click()
    expect(page.locator("table tbody tr")).to_have_count(2)
    expect(page.locator("table tbody tr").first).to_contain_text("parcel.shipped")
    screenshot(page, "dash-types")
    assert dialogs == []


def test_bad_input_in_the_browser_shows_errors_and_saves_nothing(page, make_site):
    site = make_site("dash-types-bad")
    log_in(page, site)
    page.goto(site.url("/dashboard/types/new"))
    page.get_by_label("Key").fill("Not A Key")
    page.get_by_label("In-app").uncheck()
    page.locator("#id_email_html").fill("{% block %}")
    page.get_by_role("button", name="Create type").click()
    expect(page.get_by_role("alert").first).to_contain_text("Nothing was saved")
    expect(page.locator(".errorlist").first).to_contain_text("1 to 100 lowercase letters")
    expect(page.locator("#id_email_html")).to_have_value("{% block %}")  # kept for fixing
    expect(page.locator(".has-error")).to_have_count(3)
    with schema_context(site.tenant.schema_name):
        assert not NotificationType.objects.exists()


def test_send_me_a_test_email_arrives_at_a_real_smtp_server(page, make_site, committed):
    site = make_site("dash-types-mail", name="Mailing Co")
    put_type(
        site.api,
        "digest.weekly",
        email_subject="{{ title }} for {{ user.name }}",
        email_html="<p>{{ message }}</p>",
    )
    with smtp_sink() as sink, running_web(EMAIL_URL=sink.url) as server:
        mailing = dataclasses.replace(site, server=server)
        log_in(page, mailing)
        page.goto(mailing.url(type_url("digest.weekly")))
        page.get_by_role("button", name="Send me a test email").click()
        expect(page.get_by_role("status")).to_contain_text(f"sent to {site.email}")
        [message] = wait_until(lambda: sink.to(site.email), timeout=10, what="the test email")
    assert message["Subject"] == "[Test] Your report is ready for Ada Lovelace"
    assert "Mailing Co" in message["From"]
    assert message["X-Herald-Test"] == "1"
    assert "The March revenue report" in message.get_body(("html",)).get_content()
