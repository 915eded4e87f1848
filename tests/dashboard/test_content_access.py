"""Who reaches the content pages: a tenant's own admins only. Tenant B's admin gets 404 for every
URL that names one of tenant A's objects, and anonymous visitors go to the login page."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from dashboard.templatetags.content_links import type_sub_url, type_url, user_erase_url, user_url
from notifications.models import EndUser, NotificationType, Send
from tests.dashboard.content_helpers import dashboard, put_type, send

pytestmark = pytest.mark.django_db

A_USER = "alpha/only user%"
A_TYPE = "alpha-only.type"


@pytest.fixture
def alpha_objects(world, alice_key):
    """A send, a user and a type that exist in tenant A and not in tenant B."""
    put_type(alice_key, A_TYPE, channels=["in_app"])
    send_at = "2999-01-01T00:00:00Z"
    with schema_context(world.tenant_b.schema_name):
        taken = set(Send.objects.values_list("pk", flat=True))
    # Ids are per schema: make sure B has no send with the same numbers.
    for _attempt in range(50):
        sent = send(alice_key, A_TYPE, [{"id": A_USER, "name": "Only A"}])
        scheduled = send(alice_key, A_TYPE, ["someone-a"], send_at=send_at)
        if not {sent, scheduled} & taken:
            break
    with schema_context(world.tenant_b.schema_name):
        assert not Send.objects.filter(pk__in=[sent, scheduled]).exists()
        assert not EndUser.objects.filter(external_id=A_USER).exists()
        assert not NotificationType.objects.filter(key=A_TYPE).exists()
    return {"send": sent, "scheduled": scheduled}


def object_urls(objects):
    send_path = f"/dashboard/notifications/{objects['send']}"
    return {
        "GET": [
            send_path,
            f"{send_path}?after=1",
            user_url(A_USER),
            type_url(A_TYPE),
            f"{type_url(A_TYPE)}/edit",
            type_sub_url(A_TYPE, "preview"),
        ],
        "POST": [
            f"/dashboard/notifications/{objects['scheduled']}/cancel",
            user_erase_url(A_USER),
            user_url(A_USER),
            type_url(A_TYPE),
            type_sub_url(A_TYPE, "test-email"),
        ],
    }


def test_tenant_a_admin_reaches_every_object_page(world, alpha_objects):
    alice = dashboard(world.tenant_a, world.alice.email)
    for path in object_urls(alpha_objects)["GET"]:
        assert alice.get(path).status_code == 200, path


def test_tenant_b_admin_gets_404_for_every_tenant_a_object(world, alpha_objects):
    bob = dashboard(world.tenant_b, world.bob.email)
    urls = object_urls(alpha_objects)
    for path in urls["GET"]:
        response = bob.get(path)
        assert response.status_code == 404, path
        assert b"Page not found" in response.content
    for path in urls["POST"]:
        fields = {"name": "x", "channels": ["in_app"], "erase": A_USER}
        assert bob.post(path, fields).status_code == 404, path
    with schema_context(world.tenant_a.schema_name):  # nothing of A changed
        assert EndUser.objects.filter(external_id=A_USER).exists()
        scheduled = Send.objects.get(pk=alpha_objects["scheduled"])
        assert scheduled.status == Send.Status.SCHEDULED
        assert NotificationType.objects.get(key=A_TYPE).name != "x"


def test_tenant_b_admins_session_means_nothing_on_tenant_a_host(world, alpha_objects):
    bob = dashboard(world.tenant_b, world.bob.email)
    bob.host = f"{world.tenant_a.slug}.localhost"
    for path in object_urls(alpha_objects)["GET"]:
        response = bob.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith("/dashboard/login?next=")


def test_lists_show_only_the_tenants_own_data(world, alpha_objects):
    bob = dashboard(world.tenant_b, world.bob.email)
    for path in ("/dashboard/notifications/", "/dashboard/users/", "/dashboard/types/"):
        page = bob.get(path).content.decode()
        assert A_TYPE not in page, path
        assert "alpha/only" not in page, path
    sends = bob.get("/dashboard/notifications/", {"type": A_TYPE})
    assert sends.status_code == 400  # not one of B's types
    suggestions = bob.get("/dashboard/notifications/test/recipients", {"q": "alpha"}).json()
    assert suggestions == {"results": []}


PAGES = [
    ("GET", "/dashboard/notifications/"),
    ("GET", "/dashboard/notifications/test"),
    ("POST", "/dashboard/notifications/test"),
    ("GET", "/dashboard/notifications/test/recipients?q=a"),
    ("GET", "/dashboard/users/"),
    ("GET", "/dashboard/types/"),
    ("GET", "/dashboard/types/new"),
    ("POST", "/dashboard/types/new"),
    ("GET", "/dashboard/types/preview"),
    ("POST", "/dashboard/types/preview"),
]


@pytest.mark.parametrize(("method", "path"), PAGES)
def test_anonymous_visitors_are_sent_to_the_login_page(world, method, path):
    anonymous = dashboard(world.tenant_a)
    response = anonymous.get(path) if method == "GET" else anonymous.post(path, {})
    assert response.status_code == 302
    assert response["Location"].startswith("/dashboard/login?next=")


def test_anonymous_visitors_cannot_reach_objects_either(world, alpha_objects):
    anonymous = dashboard(world.tenant_a)
    urls = object_urls(alpha_objects)
    for path in urls["GET"]:
        assert anonymous.get(path).status_code == 302, path
    for path in urls["POST"]:
        assert anonymous.post(path).status_code == 302, path
    with schema_context(world.tenant_a.schema_name):
        assert EndUser.objects.filter(external_id=A_USER).exists()


def test_changes_need_a_csrf_token(world, alpha_objects):
    alice = dashboard(world.tenant_a, world.alice.email, csrf=True)
    for path in object_urls(alpha_objects)["POST"]:
        response = alice.post(path, {"name": "x", "channels": ["in_app"]})
        assert response.status_code == 403, path
        assert b"Form expired" in response.content
    with schema_context(world.tenant_a.schema_name):
        assert EndUser.objects.filter(external_id=A_USER).exists()


def test_the_content_pages_are_not_served_on_the_platform_host(world):
    client = dashboard(world.tenant_a, world.alice.email)
    client.host = "localhost"
    assert client.get("/dashboard/notifications/").status_code == 404
