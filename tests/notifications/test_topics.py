"""Topics: the API for topics and subscribers, end users' own choice among self-service topics,
and sends that name a topic (reaching its subscribers at release, each once, within the plan)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.db import OperationalError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import Delivery, EndUser, Notification, Send, Topic, TopicSubscription
from notifications.services.sending import sends_release_due
from notifications.services.topics import topic_hold, topic_subscribe
from notifications.services.users import RecipientInput
from tests.support.api import Caller, error_code

SEND = {"type": "release", "title": "Out", "message": "Version 2 is out"}


def in_a(world):
    return schema_context(world.tenant_a.schema_name)


def reached(world, send_id: int) -> list[str]:
    """The external ids a send wrote in-app rows for, sorted."""
    with in_a(world):
        return sorted(
            Notification.objects.filter(send_id=send_id).values_list(
                "recipient__external_id", flat=True
            )
        )


def subscribe(caller: Caller, key: str, *external_ids: str) -> None:
    response = caller.post(f"/api/v1/topics/{key}/subscribers", {"subscribers": list(external_ids)})
    assert response.status_code == 200, response.content


@pytest.fixture
def project(alice_key: Caller) -> str:
    assert alice_key.put("/api/v1/topics/project-42", {"name": "Project 42"}).status_code == 201
    return "project-42"


class TestTopicsApi:
    def test_create_read_update_list_delete(self, alice_key, world):
        created = alice_key.put("/api/v1/topics/proj.1", {"name": "Project one"})
        assert created.status_code == 201
        body = created.json()
        assert body["key"] == "proj.1"
        assert body["name"] == "Project one"
        assert body["self_service"] is False
        assert body["subscribers"] == 0
        updated = alice_key.put("/api/v1/topics/proj.1", {**body, "self_service": True})
        assert updated.status_code == 200
        assert updated.json()["self_service"] is True
        assert updated.json()["name"] == "Project one"
        assert alice_key.get("/api/v1/topics/proj.1").json()["self_service"] is True
        alice_key.put("/api/v1/topics/proj.2", {})
        subscribe(alice_key, "proj.1", "user-1", "t-2")
        first = alice_key.get("/api/v1/topics", {"limit": 1}).json()
        assert [t["key"] for t in first["results"]] == ["proj.2"]
        second = alice_key.get("/api/v1/topics", {"cursor": first["next_cursor"]}).json()
        assert [(t["key"], t["subscribers"]) for t in second["results"]] == [("proj.1", 2)]
        assert second["next_cursor"] is None
        assert alice_key.delete("/api/v1/topics/proj.1").status_code == 204
        assert alice_key.get("/api/v1/topics/proj.1").status_code == 404
        assert alice_key.delete("/api/v1/topics/proj.1").status_code == 404
        with in_a(world):
            assert not TopicSubscription.objects.filter(topic__key="proj.1").exists()
            assert EndUser.objects.filter(external_id="t-2").exists()  # users stay

    def test_list_counts_subscribers_in_a_fixed_number_of_queries(self, alice_key):
        for n in range(5):
            alice_key.put(f"/api/v1/topics/t{n}", {})
            if n:
                subscribe(alice_key, f"t{n}", *[f"u{m}" for m in range(n)])
        with CaptureQueriesContext(connection) as few:
            small = alice_key.get("/api/v1/topics", {"limit": 2}).json()
        with CaptureQueriesContext(connection) as more:
            large = alice_key.get("/api/v1/topics", {"limit": 5}).json()
        assert [t["subscribers"] for t in small["results"]] == [4, 3]
        assert [t["subscribers"] for t in large["results"]] == [4, 3, 2, 1, 0]
        assert len(more) == len(few)

    @pytest.mark.parametrize(
        ("path", "body", "field"),
        [
            ("/api/v1/topics/Not_Valid", {}, "key"),
            ("/api/v1/topics/ok", {"key": "other"}, "key"),
            ("/api/v1/topics/ok", {"self_service": "yes"}, "self_service"),
            ("/api/v1/topics/ok", {"colour": "red"}, "colour"),
        ],
    )
    def test_invalid_upserts_are_400(self, alice_key, world, path, body, field):
        response = alice_key.put(path, body)
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]
        with in_a(world):
            assert not Topic.objects.exists()

    def test_subscribers_put_delete_and_paging(self, alice_key, project, world):
        path = f"/api/v1/topics/{project}/subscribers"
        first = alice_key.put(f"{path}/new-person")
        assert first.status_code == 201
        assert first.json()["id"] == "new-person"
        assert alice_key.put(f"{path}/new-person").status_code == 200  # idempotent
        assert alice_key.put(f"{path}/user-1").status_code == 201
        with in_a(world):
            assert EndUser.objects.filter(external_id="new-person").exists()
        page = alice_key.get(path, {"limit": 1}).json()
        assert [s["id"] for s in page["results"]] == ["user-1"]
        rest = alice_key.get(path, {"cursor": page["next_cursor"]}).json()
        assert [s["id"] for s in rest["results"]] == ["new-person"]
        assert rest["next_cursor"] is None
        assert alice_key.delete(f"{path}/user-1").status_code == 204
        assert alice_key.delete(f"{path}/user-1").status_code == 204  # idempotent
        assert alice_key.delete(f"{path}/nobody-at-all").status_code == 204
        assert [s["id"] for s in alice_key.get(path).json()["results"]] == ["new-person"]
        assert alice_key.put("/api/v1/topics/missing/subscribers/user-1").status_code == 404
        assert alice_key.get("/api/v1/topics/missing/subscribers").status_code == 404

    def test_subscribers_list_in_a_fixed_number_of_queries(self, alice_key, project):
        path = f"/api/v1/topics/{project}/subscribers"
        subscribe(alice_key, project, *[f"q{n}" for n in range(10)])
        with CaptureQueriesContext(connection) as few:
            assert len(alice_key.get(path, {"limit": 2}).json()["results"]) == 2
        with CaptureQueriesContext(connection) as more:
            assert len(alice_key.get(path, {"limit": 10}).json()["results"]) == 10
        assert len(more) == len(few)

    def test_bulk_subscribe(self, alice_key, project, world):
        path = f"/api/v1/topics/{project}/subscribers"
        body = {"subscribers": ["a", {"id": "b", "email": "b@example.com"}, "a", "user-1"]}
        assert alice_key.post(path, body).json() == {"subscribed": 3, "subscribers": 3}
        assert alice_key.post(path, {"subscribers": ["a", "c"]}).json() == {
            "subscribed": 1,
            "subscribers": 4,
        }
        with in_a(world):
            assert EndUser.objects.get(external_id="b").email == "b@example.com"
        assert alice_key.post(path, {"subscribers": []}).status_code == 400


class TestAccess:
    def test_end_user_token_is_refused_on_server_endpoints(self, erin, alice_key, project):
        for response in (
            erin.get("/api/v1/topics"),
            erin.put("/api/v1/topics/mine", {}),
            erin.get(f"/api/v1/topics/{project}"),
            erin.delete(f"/api/v1/topics/{project}"),
            erin.put(f"/api/v1/topics/{project}/subscribers/user-1"),
            erin.get(f"/api/v1/topics/{project}/subscribers"),
            erin.post("/api/v1/notifications", {**SEND, "topic": project}),
        ):
            assert response.status_code == 403, response.content
            assert error_code(response) == "forbidden"

    def test_another_tenant_can_neither_see_change_nor_send_to_a_topic(
        self, alice_key, bob_key, project, world
    ):
        subscribe(alice_key, project, "user-1")
        assert bob_key.get("/api/v1/topics").json()["results"] == []
        assert bob_key.get(f"/api/v1/topics/{project}").status_code == 404
        assert bob_key.get(f"/api/v1/topics/{project}/subscribers").status_code == 404
        assert bob_key.put(f"/api/v1/topics/{project}/subscribers/user-1").status_code == 404
        assert bob_key.delete(f"/api/v1/topics/{project}/subscribers/user-1").status_code == 404
        assert bob_key.delete(f"/api/v1/topics/{project}").status_code == 404
        sent = bob_key.post("/api/v1/notifications", {**SEND, "topic": project})
        assert sent.status_code == 404
        assert "topic" in sent.json()["error"]["details"]
        # Tenant A's key on tenant B's host is refused outright.
        stray = Caller(host=world.bob.host, token=world.alice.api_key)
        assert stray.get("/api/v1/topics").status_code == 401
        with in_a(world):
            assert Topic.objects.get(key=project).subscriptions.count() == 1


class TestMyTopics:
    @pytest.fixture
    def topics(self, alice_key):
        alice_key.put("/api/v1/topics/news", {"name": "News", "self_service": True})
        alice_key.put("/api/v1/topics/tips", {"name": "Tips", "self_service": True})
        alice_key.put("/api/v1/topics/staff", {"name": "Staff only"})
        subscribe(alice_key, "staff", "user-1")
        subscribe(alice_key, "tips", "user-1")

    def test_lists_self_service_topics_only_with_flags(self, erin, topics):
        body = erin.get("/api/v1/me/topics").json()
        assert body["results"] == [
            {"key": "tips", "name": "Tips", "subscribed": True},
            {"key": "news", "name": "News", "subscribed": False},
        ]

    def test_put_sets_the_self_service_set_and_leaves_others(self, erin, alice_key, topics):
        response = erin.put("/api/v1/me/topics", {"subscribed": ["news"]})
        assert response.status_code == 200
        assert response.json() == {"subscribed": ["news"]}
        flags = {t["key"]: t["subscribed"] for t in erin.get("/api/v1/me/topics").json()["results"]}
        assert flags == {"news": True, "tips": False}
        staff = alice_key.get("/api/v1/topics/staff/subscribers").json()["results"]
        assert [s["id"] for s in staff] == ["user-1"]  # not the user's to change
        assert erin.put("/api/v1/me/topics", {"subscribed": []}).json() == {"subscribed": []}
        assert alice_key.get("/api/v1/topics/staff").json()["subscribers"] == 1

    @pytest.mark.parametrize("key", ["staff", "no-such-topic"])
    def test_a_topic_that_is_not_self_service_is_refused_and_nothing_changes(
        self, erin, topics, key
    ):
        response = erin.put("/api/v1/me/topics", {"subscribed": ["news", key]})
        assert response.status_code == 400
        assert key in response.json()["error"]["details"]["subscribed"][0]
        flags = {t["key"]: t["subscribed"] for t in erin.get("/api/v1/me/topics").json()["results"]}
        assert flags == {"news": False, "tips": True}

    def test_server_credentials_are_refused(self, alice_key, topics):
        assert alice_key.get("/api/v1/me/topics").status_code == 403


class TestTopicSends:
    def test_reaches_subscribers_once_with_the_listed_and_counts_them(
        self, alice_key, project, world
    ):
        subscribe(alice_key, project, "s-1", "s-2", "user-1")
        alice_key.delete(f"/api/v1/topics/{project}/subscribers/s-2")
        response = alice_key.post(
            "/api/v1/notifications",
            {**SEND, "topic": project, "recipients": ["user-1", "listed-only"]},
        )
        assert response.status_code == 202
        body = response.json()
        assert body == {"id": body["id"], "recipients": 3, "status": "accepted"}
        assert reached(world, body["id"]) == ["listed-only", "s-1", "user-1"]
        detail = alice_key.get(f"/api/v1/sends/{body['id']}").json()
        assert detail["recipients"] == 3
        assert detail["channels"]["in_app"] == {"sent": 3}

    def test_each_recipient_counts_against_the_monthly_quota(self, alice_key, project):
        subscribe(alice_key, project, "s-1", "s-2", "s-3")
        before = alice_key.get("/api/v1/usage").json()["notifications"]["used"]
        alice_key.post("/api/v1/notifications", {**SEND, "topic": project, "recipients": ["s-1"]})
        assert alice_key.get("/api/v1/usage").json()["notifications"]["used"] == before + 3

    def test_topic_alone(self, alice_key, project, world):
        subscribe(alice_key, project, "s-1", "s-2")
        body = alice_key.post("/api/v1/notifications", {**SEND, "topic": project}).json()
        assert body["recipients"] == 2
        assert reached(world, body["id"]) == ["s-1", "s-2"]
        assert alice_key.get(f"/api/v1/sends/{body['id']}").json()["topic"] == project

    def test_an_empty_topic_reaches_nobody(self, alice_key, project, world):
        body = alice_key.post("/api/v1/notifications", {**SEND, "topic": project}).json()
        assert body["recipients"] == 0
        assert reached(world, body["id"]) == []

    @pytest.mark.parametrize(
        ("extra", "field", "status"),
        [
            ({}, "recipients", 400),
            ({"topic": "Bad Key"}, "topic", 400),
            ({"topic": "nope"}, "topic", 404),
        ],
    )
    def test_neither_recipients_nor_a_known_topic(self, alice_key, world, extra, field, status):
        with in_a(world):
            before = Send.objects.count()
        response = alice_key.post("/api/v1/notifications", {**SEND, **extra})
        assert response.status_code == status
        assert field in response.json()["error"]["details"]
        with in_a(world):
            assert Send.objects.count() == before

    def test_an_erased_user_is_not_reached(self, alice_key, project, world):
        subscribe(alice_key, project, "s-1", "gone")
        assert alice_key.delete("/api/v1/users/gone").status_code == 204
        body = alice_key.post("/api/v1/notifications", {**SEND, "topic": project}).json()
        assert body["recipients"] == 1
        assert reached(world, body["id"]) == ["s-1"]

    def test_email_channel_writes_one_delivery_per_subscriber(self, alice_key, project, world):
        alice_key.put("/api/v1/types/release", {"name": "Release", "channels": ["in_app", "email"]})
        subscribe(alice_key, project, "s-1", "s-2", "user-1")
        body = alice_key.post(
            "/api/v1/notifications", {**SEND, "topic": project, "recipients": ["user-1"]}
        ).json()
        with in_a(world):
            deliveries = Delivery.objects.filter(send_id=body["id"], channel="email")
            assert sorted(deliveries.values_list("recipient__external_id", flat=True)) == [
                "s-1",
                "s-2",
                "user-1",
            ]
            assert all(d.notification_id is not None for d in deliveries)
            assert {d.status for d in deliveries} == {Delivery.Status.QUEUED}

    def test_localised_type(self, alice_key, project, world):
        alice_key.put(
            "/api/v1/types/release",
            {"locales": {"de": {"title": "Neu: {{ title }}"}, "fr": {"title": "Nouveau"}}},
        )
        alice_key.post(
            f"/api/v1/topics/{project}/subscribers",
            {"subscribers": [{"id": "de-1", "locale": "de"}, {"id": "fr-1", "locale": "fr"}]},
        )
        body = alice_key.post(
            "/api/v1/notifications", {**SEND, "topic": project, "recipients": ["user-1"]}
        ).json()
        with in_a(world):
            titles = dict(
                Notification.objects.filter(send_id=body["id"]).values_list(
                    "recipient__external_id", "title"
                )
            )
        assert titles == {"de-1": "Neu: Out", "fr-1": "Nouveau", "user-1": "Out"}

    def test_plan_limit_refuses_a_larger_audience_whole(self, bob_key, world):
        # Tenant B is on the free plan: at most 1,000 recipients per send.
        bob_key.put("/api/v1/topics/everyone", {})
        subscribe(bob_key, "everyone", *[f"u{n}" for n in range(1000)])
        response = bob_key.post(
            "/api/v1/notifications", {**SEND, "topic": "everyone", "recipients": ["u1", "extra"]}
        )
        assert response.status_code == 400
        message = response.json()["error"]["details"]["topic"][0]
        assert "1001" in message
        assert "1000" in message
        with schema_context(world.tenant_b.schema_name):
            assert not Send.objects.exists()
        within = bob_key.post("/api/v1/notifications", {**SEND, "topic": "everyone"})
        assert within.status_code == 202
        assert within.json()["recipients"] == 1000


class TestScheduledTopicSends:
    def later(self, hours: int = 1) -> str:
        return (timezone.now() + timedelta(hours=hours)).isoformat()

    def test_reaches_the_subscribers_at_release(self, alice_key, project, world):
        subscribe(alice_key, project, "early", "leaves", "user-1")
        body = alice_key.post(
            "/api/v1/notifications",
            {**SEND, "topic": project, "recipients": ["user-1"], "send_at": self.later()},
        ).json()
        assert body["status"] == "scheduled"
        assert body["recipients"] == 3
        subscribe(alice_key, project, "late")
        alice_key.delete(f"/api/v1/topics/{project}/subscribers/leaves")
        assert reached(world, body["id"]) == []
        with in_a(world):
            assert sends_release_due(tenant=world.tenant_a, now=timezone.now()) == 0
            released = sends_release_due(
                tenant=world.tenant_a, now=timezone.now() + timedelta(hours=2)
            )
            assert released == 1
        assert reached(world, body["id"]) == ["early", "late", "user-1"]
        detail = alice_key.get(f"/api/v1/sends/{body['id']}").json()
        assert detail["status"] == "accepted"
        assert detail["recipients"] == 3

    def test_grown_past_the_plan_limit_by_release_is_cancelled(self, bob_key, world):
        bob_key.put("/api/v1/topics/everyone", {})
        subscribe(bob_key, "everyone", *[f"u{n}" for n in range(999)])
        body = bob_key.post(
            "/api/v1/notifications", {**SEND, "topic": "everyone", "send_at": self.later()}
        ).json()
        assert body["recipients"] == 999
        subscribe(bob_key, "everyone", "u999", "u1000")
        with schema_context(world.tenant_b.schema_name):
            later = timezone.now() + timedelta(hours=2)
            assert sends_release_due(tenant=world.tenant_b, now=later) == 1
            assert not Notification.objects.filter(send_id=body["id"]).exists()
        detail = bob_key.get(f"/api/v1/sends/{body['id']}").json()
        assert detail["status"] == "cancelled"
        assert detail["recipients"] == 1001
        assert detail["cancel_reason"] == (
            "At its release its audience was 1001 recipients, more than the plan's 1000 per "
            "send; nothing was delivered."
        )

    def test_deleting_the_topic_keeps_listed_recipients_and_cancels_topic_only_sends(
        self, alice_key, project, world
    ):
        subscribe(alice_key, project, "s-1")
        with_listed = alice_key.post(
            "/api/v1/notifications",
            {**SEND, "topic": project, "recipients": ["user-1"], "send_at": self.later()},
        ).json()
        topic_only = alice_key.post(
            "/api/v1/notifications", {**SEND, "topic": project, "send_at": self.later()}
        ).json()
        assert alice_key.delete(f"/api/v1/topics/{project}").status_code == 204
        cancelled = alice_key.get(f"/api/v1/sends/{topic_only['id']}").json()
        assert cancelled["status"] == "cancelled"
        assert cancelled["cancel_reason"] == (
            f"Its topic {project!r} was deleted, and it listed no recipients."
        )
        with in_a(world):
            sends_release_due(tenant=world.tenant_a, now=timezone.now() + timedelta(hours=2))
        assert reached(world, with_listed["id"]) == ["user-1"]
        detail = alice_key.get(f"/api/v1/sends/{with_listed['id']}").json()
        assert detail["status"] == "accepted"
        assert detail["cancel_reason"] is None
        assert detail["recipients"] == 1
        assert detail["topic"] is None


def test_a_send_reading_a_topic_holds_off_subscription_changes_not_other_sends(world, committed):
    """What a send's channels read of a topic stays put until it commits: subscribing waits
    for it (here: gives up after a lock timeout), while another send reads alongside."""
    schema = world.tenant_a.schema_name

    def on_another_connection(work):
        outcome: list[object] = []

        def run() -> None:
            try:
                with schema_context(schema):
                    with connection.cursor() as cursor:
                        cursor.execute("SET lock_timeout = '300ms'")
                    outcome.append(work())
            except Exception as exc:  # asserted on below
                outcome.append(exc)
            finally:
                connection.close()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(30)
        return outcome[0]

    with schema_context(schema):
        topic = Topic.objects.create(key="held-topic")
        try:
            with transaction.atomic():
                assert topic_hold(topic_id=topic.pk)
                joined = on_another_connection(lambda: topic_hold(topic_id=topic.pk))
                waited = on_another_connection(
                    lambda: topic_subscribe(topic=topic, users=[RecipientInput("held-user")])
                )
            assert joined is True
            assert isinstance(waited, OperationalError)
            assert "lock timeout" in str(waited)
            assert not TopicSubscription.objects.filter(topic=topic).exists()
        finally:
            topic.delete()
            EndUser.objects.filter(external_id="held-user").delete()
