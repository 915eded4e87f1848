"""Delayed channels in the dashboard: the type editor sets channel rules in plain words and
says them as a sentence; a send's page says how many deliveries escalation saved."""

from __future__ import annotations

import re

import pytest
from django_tenants.utils import schema_context, tenant_context

from notifications.models import Delivery, NotificationType
from notifications.services.deliveries import deliveries_deliver
from tests.dashboard.content_helpers import dashboard, send
from tests.support.processes import wait_until


@pytest.fixture
def alice(world, db):
    return dashboard(world.tenant_a, world.alice.email)


def type_form(**changes):
    return {
        "key": "reply.escalated",
        "name": "Replies",
        "channels": ["in_app", "email", "push"],
        "digest_window_seconds": "",
        "email_subject": "",
        "email_text": "",
        "email_html": "",
        "rule_email_timing": "after",
        "rule_email_amount": "15",
        "rule_email_unit": "minutes",
        "rule_email_only_if_unread": "on",
        "rule_push_timing": "now",
        "rule_push_amount": "",
        "rule_push_unit": "minutes",
        **changes,
    }


def stored(world, key):
    with schema_context(world.tenant_a.schema_name):
        return NotificationType.objects.filter(key=key).first()


def test_the_editor_saves_rules_in_plain_words_and_says_them(alice, alice_key, world):
    response = alice.post("/dashboard/types/new", type_form())
    assert response.status_code == 302, response.content.decode()
    assert stored(world, "reply.escalated").channel_rules == {
        "email": {"delay_seconds": 900, "only_if_unread": True}
    }  # push goes out at once, whatever the state: no rule
    assert alice_key.get("/api/v1/types/reply.escalated").json()["channel_rules"] == {
        "email": {"delay_seconds": 900, "only_if_unread": True}
    }

    edit = alice.get("/dashboard/types/reply.escalated").content.decode()
    assert "Email after 15 minutes, only if still unread." in edit
    assert 'name="rule_email_amount" value="15"' in edit
    assert re.search(r'name="rule_email_timing" value="after"[^>]*checked', edit)
    assert re.search(r'name="rule_email_only_if_unread"[^>]*checked', edit)
    assert (
        "Email after 15 minutes, only if still unread"
        in alice.get("/dashboard/types/").content.decode()
    )

    changed = type_form(
        rule_email_timing="now",
        rule_email_only_if_unread="",
        rule_push_timing="after",
        rule_push_amount="2",
        rule_push_unit="hours",
        rule_push_only_if_unread="on",
    )
    del changed["key"]
    del changed["rule_email_only_if_unread"]  # an unticked box is not posted
    assert alice.post("/dashboard/types/reply.escalated", changed).status_code == 302
    assert stored(world, "reply.escalated").channel_rules == {
        "push": {"delay_seconds": 7200, "only_if_unread": True}
    }
    edit = alice.get("/dashboard/types/reply.escalated").content.decode()
    assert "Web push after 2 hours, only if still unread." in edit


def test_a_type_without_rules_says_every_channel_goes_out_immediately(alice, world):
    form = type_form(rule_email_timing="now", key="reply.plain")
    del form["rule_email_only_if_unread"]
    assert alice.post("/dashboard/types/new", form).status_code == 302
    assert stored(world, "reply.plain").channel_rules == {}
    assert (
        "Every channel goes out immediately."
        in alice.get("/dashboard/types/reply.plain").content.decode()
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rule_email_amount": ""}, "Say how long to wait."),
        ({"rule_email_amount": "0"}, "greater than or equal to 1"),
        ({"rule_email_amount": "169", "rule_email_unit": "hours"}, "at most 7 days"),
        ({"rule_email_unit": "fortnights"}, "Select a valid choice"),
    ],
)
def test_bad_rules_show_field_errors_and_write_nothing(alice, world, changes, message):
    response = alice.post("/dashboard/types/new", type_form(**changes))
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert "Nothing was saved" in body
    assert stored(world, "reply.escalated") is None


def test_a_sends_page_says_how_many_emails_escalation_saved(
    alice, alice_key, erin, erins_neighbour, world
):
    rules = {"email": {"delay_seconds": 1, "only_if_unread": True}}
    body = {"channels": ["in_app", "email"], "channel_rules": rules}
    assert alice_key.put("/api/v1/types/reply.saved", body).status_code == 201
    send_id = send(alice_key, "reply.saved", ["user-1", "user-2"])
    for user in (erin, erins_neighbour):
        results = user.get("/api/v1/me/notifications").json()["results"]
        [notification] = [n for n in results if n["type"] == "reply.saved"]  # and earlier tests'
        assert (
            user.patch(
                f"/api/v1/me/notifications/{notification['id']}", {"is_read": True}
            ).status_code
            == 200
        )
    tenant = world.tenant_a

    def released() -> bool:
        with tenant_context(tenant):
            deliveries_deliver(tenant=tenant)  # a worker's turn, in this transaction
            statuses = Delivery.objects.filter(send_id=send_id).values_list("status", flat=True)
            return set(statuses) == {Delivery.Status.SKIPPED_READ}

    wait_until(released, timeout=10, what="released")
    page = alice.get(f"/dashboard/notifications/{send_id}").content.decode()
    assert "Escalation saved 2 emails" in page
    assert "2 skipped: read in time" in page
