"""``channels`` of ``GET /api/v1/sends/{id}``: one report, whatever asks (the API, the dashboard's
send log and send page all read ``selectors.send_channel_summaries``)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django_tenants.utils import schema_context

from notifications import selectors
from notifications.models import Send

SEND = {"type": "summary", "recipients": ["user-1", "user-2"], "message": "Hi"}


def _later() -> str:
    return (timezone.now() + timedelta(hours=1)).isoformat()


def test_a_cancelled_send_reports_no_channel_before_and_after_the_delete(alice_key):
    scheduled = alice_key.post("/api/v1/notifications", {**SEND, "send_at": _later()}).json()
    assert alice_key.get(f"/api/v1/sends/{scheduled['id']}").json()["channels"] == {}
    cancelled = alice_key.delete(f"/api/v1/sends/{scheduled['id']}")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["channels"] == {}  # nobody was reached, nobody skipped
    after = alice_key.get(f"/api/v1/sends/{scheduled['id']}").json()
    assert after["status"] == "cancelled"
    assert after["channels"] == {}


def test_a_released_send_reports_its_opt_outs_as_skipped(alice_key, erin):
    alice_key.put("/api/v1/types/summary", {"channels": ["in_app"]})
    erin.put("/api/v1/me/preferences", {"types": {"summary": {"in_app": False}}})
    sent = alice_key.post("/api/v1/notifications", SEND).json()
    body = alice_key.get(f"/api/v1/sends/{sent['id']}").json()
    assert body["channels"] == {"in_app": {"sent": 1, "skipped_preference": 1}}


def test_one_send_and_a_page_of_sends_get_the_same_report(alice_key, erin, world):
    erin.put("/api/v1/me/preferences", {"types": {"summary": {"in_app": False}}})
    ids = [
        alice_key.post("/api/v1/notifications", SEND).json()["id"],
        alice_key.post("/api/v1/notifications", {**SEND, "send_at": _later()}).json()["id"],
        alice_key.post("/api/v1/notifications", {**SEND, "send_at": _later()}).json()["id"],
    ]
    alice_key.delete(f"/api/v1/sends/{ids[2]}")
    with schema_context(world.tenant_a.schema_name):
        sends = list(Send.objects.filter(pk__in=ids))
        page = selectors.send_channel_summaries(sends=sends)
        assert page == {send.pk: selectors.send_channel_summary(send=send) for send in sends}
    for send_id in ids:
        assert alice_key.get(f"/api/v1/sends/{send_id}").json()["channels"] == page[send_id]
    assert page[ids[0]] == {"in_app": {"sent": 1, "skipped_preference": 1}}
    assert page[ids[1]] == page[ids[2]] == {}


def test_no_send_costs_no_query(django_assert_num_queries, db):
    with django_assert_num_queries(0):
        assert selectors.send_channel_summaries(sends=[]) == {}
