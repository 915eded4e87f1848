"""Topics in the dashboard: the list with subscriber counts, create, rename, self-service,
delete; subscribers on a topic's page; a user's topics on their page. Admins of the host's
tenant only, with CSRF."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from dashboard.templatetags.content_links import user_url
from notifications.models import Topic, TopicSubscription
from tests.dashboard.content_helpers import counted_get, dashboard


@pytest.fixture
def alice(world, db):
    return dashboard(world.tenant_a, world.alice.email)


def subscribed(world, key: str) -> list[str]:
    with schema_context(world.tenant_a.schema_name):
        return sorted(
            TopicSubscription.objects.filter(topic__key=key).values_list(
                "user__external_id", flat=True
            )
        )


def test_create_list_rename_and_delete(alice, alice_key, world):
    created = alice.post("/dashboard/topics/", {"key": "project-7", "name": "Project 7"})
    assert created.status_code == 302
    assert created["Location"] == "/dashboard/topics/project-7"
    alice_key.put("/api/v1/topics/project-7/subscribers/user-1")
    page = alice.get("/dashboard/topics/").content.decode()
    assert "project-7" in page
    assert '<td class="num">1</td>' in page
    saved = alice.post("/dashboard/topics/project-7", {"name": "Renamed", "self_service": "on"})
    assert saved.status_code == 302
    with schema_context(world.tenant_a.schema_name):
        topic = Topic.objects.get(key="project-7")
        assert (topic.name, topic.self_service) == ("Renamed", True)
    detail = alice.get("/dashboard/topics/project-7").content.decode()
    assert "Renamed" in detail
    assert "user-1" in detail
    assert alice.post("/dashboard/topics/project-7/delete").status_code == 302
    with schema_context(world.tenant_a.schema_name):
        assert not Topic.objects.filter(key="project-7").exists()
    assert alice.get("/dashboard/topics/project-7").status_code == 404


@pytest.mark.parametrize("key", ["Bad Key", ""])
def test_an_invalid_key_is_refused_on_the_form(alice, world, key):
    response = alice.post("/dashboard/topics/", {"key": key})
    assert response.status_code == 400
    assert "errorlist" in response.content.decode()
    with schema_context(world.tenant_a.schema_name):
        assert not Topic.objects.exists()


def test_an_existing_key_is_refused(alice, alice_key):
    alice_key.put("/api/v1/topics/taken", {"name": "First"})
    response = alice.post("/dashboard/topics/", {"key": "taken", "name": "Second"})
    assert response.status_code == 400
    assert "exists already" in response.content.decode()


def test_the_list_costs_the_same_queries_for_2_or_20_topics(alice, alice_key):
    for n in range(2):
        alice_key.put(f"/api/v1/topics/qc-{n}", {})
        alice_key.put(f"/api/v1/topics/qc-{n}/subscribers/user-1")
    _page, few = counted_get(alice, "/dashboard/topics/")
    for n in range(2, 20):
        alice_key.put(f"/api/v1/topics/qc-{n}", {})
        alice_key.put(f"/api/v1/topics/qc-{n}/subscribers/user-1")
    _page, many = counted_get(alice, "/dashboard/topics/")
    assert many == few


def test_subscribe_and_unsubscribe_on_the_topic_page(alice, alice_key, world):
    alice_key.put("/api/v1/topics/news", {})
    path = "/dashboard/topics/news/subscribers"
    assert alice.post(path, {"action": "subscribe", "external_id": "brand-new"}).status_code == 302
    assert subscribed(world, "news") == ["brand-new"]
    alice.post(path, {"action": "unsubscribe", "external_id": "brand-new"})
    assert subscribed(world, "news") == []


def test_a_users_topics_on_their_page(alice, alice_key, world):
    alice_key.put("/api/v1/topics/news", {"name": "News"})
    alice_key.put("/api/v1/topics/tips", {"name": "Tips"})
    alice_key.put("/api/v1/topics/news/subscribers/user-1")
    page = alice.get(user_url("user-1")).content.decode()
    assert 'href="/dashboard/topics/news"' in page
    assert '<option value="tips">' in page
    response = alice.post(
        "/dashboard/topics/_subscribe",
        {"topic": "tips", "action": "subscribe", "external_id": "user-1", "back": "user"},
    )
    assert response.status_code == 302
    assert response["Location"] == user_url("user-1")
    assert subscribed(world, "tips") == ["user-1"]
    alice.post(
        "/dashboard/topics/news/subscribers",
        {"action": "unsubscribe", "external_id": "user-1", "back": "user"},
    )
    assert subscribed(world, "news") == []


def test_admins_of_the_host_only_and_csrf(world, db, alice_key):
    alice_key.put("/api/v1/topics/news", {})
    anonymous = dashboard(world.tenant_a)
    assert anonymous.get("/dashboard/topics/").status_code == 302
    assert anonymous.post("/dashboard/topics/news/delete").status_code == 302
    # Tenant B's admin on tenant B's host does not see tenant A's topic.
    bob = dashboard(world.tenant_b, world.bob.email)
    assert bob.get("/dashboard/topics/news").status_code == 404
    assert bob.post("/dashboard/topics/news/delete").status_code == 404
    strict = dashboard(world.tenant_a, world.alice.email, csrf=True)
    assert strict.post("/dashboard/topics/news/delete").status_code == 403
    with schema_context(world.tenant_a.schema_name):
        assert Topic.objects.filter(key="news").exists()
