"""The end user's inbox: list, filters, cursor paging, unread count, read/archive, read-all."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.type_keys import type_keys
from tests.conftest import _end_user_caller
from tests.support.api import error_code


def send(server, message: str, recipients=("user-1",), type_key: str = "comment") -> int:
    response = server.post(
        "/api/v1/notifications",
        {"type": type_key, "recipients": list(recipients), "message": message},
    )
    assert response.status_code == 202, response.content
    return response.json()["id"]


def inbox(caller, **params):
    response = caller.get("/api/v1/me/notifications", params)
    assert response.status_code == 200, response.content
    return response.json()


def unread(caller) -> int:
    return caller.get("/api/v1/me/notifications/unread_count").json()["count"]


class TestList:
    def test_newest_first_with_the_contract_fields(self, alice_key, erin):
        send(alice_key, "first")
        send(alice_key, "second")
        results = inbox(erin)["results"]
        assert [n["message"] for n in results][:2] == ["second", "first"]
        assert set(results[0]) == {
            "id", "type", "title", "message", "url", "data", "created_at",
            "is_read", "read_at", "archived",
        }  # fmt: skip
        assert results[0]["type"] == "comment"
        assert results[0]["is_read"] is False
        assert results[0]["id"] > results[1]["id"]

    def test_cursor_paging_is_stable_under_inserts(self, alice_key, erin):
        for n in range(5):
            send(alice_key, f"m{n}")
        page1 = inbox(erin, limit=2)
        send(alice_key, "arrived meanwhile")
        page2 = inbox(erin, limit=2, cursor=page1["next_cursor"])
        page3 = inbox(erin, limit=2, cursor=page2["next_cursor"])
        seen = [n["message"] for n in page1["results"] + page2["results"] + page3["results"]]
        assert seen == ["m4", "m3", "m2", "m1", "m0"]
        assert page3["next_cursor"] is None

    @pytest.mark.parametrize(
        ("params", "field"),
        [({"cursor": "garbage!"}, "cursor"), ({"cursor": ""}, "cursor"),
         ({"cursor": "djE6LTE"}, "cursor"), ({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
         ({"limit": ""}, "limit"), ({"limit": " 5"}, "limit"), ({"limit": 101}, "limit"),
         ({"limit": [5, 6]}, "limit"), ({"status": "deleted"}, "status"),
         ({"status": ""}, "status")],
    )  # fmt: skip
    def test_bad_parameters_are_400(self, erin, params, field):
        response = erin.get("/api/v1/me/notifications", params)
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]

    def test_status_filters(self, alice_key, erin):
        ids = [send(alice_key, f"m{n}") for n in range(3)]
        rows = {n["message"]: n["id"] for n in inbox(erin)["results"]}
        erin.patch(f"/api/v1/me/notifications/{rows['m0']}", {"is_read": True})
        erin.patch(f"/api/v1/me/notifications/{rows['m1']}", {"archived": True})
        assert len(ids) == 3

        def messages(status):
            return sorted(n["message"] for n in inbox(erin, status=status)["results"])

        assert messages("unread") == ["m2"]
        assert messages("read") == ["m0"]
        assert messages("archived") == ["m1"]
        assert messages("all") == ["m0", "m1", "m2"]

    def test_page_costs_a_fixed_number_of_queries(self, alice_key, erin, django_assert_num_queries):
        for n in range(30):
            send(alice_key, f"m{n}")
        inbox(erin)
        # host and tenant from the registry cache; then search_path, and one statement for
        # the page, on the notifications table alone (a backend new to the schema reads the
        # catalog entries of every table a statement names): the rows prove that the token's
        # user still exists, and the type keys this process has seen
        with django_assert_num_queries(2) as queries:
            assert len(inbox(erin, limit=25)["results"]) == 25
        page = queries.captured_queries[-1]["sql"]
        assert "notifications_notification" in page
        assert "notifications_enduser" not in page
        assert "notifications_notificationtype" not in page

    def test_an_empty_inbox_is_an_empty_page(self, alice_key, erin):
        assert inbox(erin) == {"results": [], "next_cursor": None}
        assert inbox(erin, status="archived") == {"results": [], "next_cursor": None}
        send(alice_key, "read it")
        (row,) = inbox(erin)["results"]
        erin.patch(f"/api/v1/me/notifications/{row['id']}", {"is_read": True})
        assert inbox(erin, status="unread") == {"results": [], "next_cursor": None}

    def test_type_keys_are_each_tenants_own_for_the_same_type_id(self, world, erin, bravo_user):
        """Rows written around the send path (so this process has not seen their types): the
        page reads the keys, and a type id that both tenants use names each tenant's own."""
        for tenant, key in ((world.tenant_a, "same-id-a"), (world.tenant_b, "same-id-b")):
            with schema_context(tenant.schema_name):
                type_ = NotificationType.objects.create(id=987_654, key=key, name=key)
                send_row = Send.objects.create(type=type_, message=key, channels=["in_app"])
                Notification.objects.create(
                    send=send_row,
                    type=type_,
                    recipient=EndUser.objects.get(external_id="user-1"),
                    message=key,
                    created_at=timezone.now(),
                )
        for caller, key in ((erin, "same-id-a"), (bravo_user, "same-id-b")):
            for _ in range(2):  # read, then held
                (row,) = inbox(caller)["results"]
                assert (row["type"], row["message"]) == (key, key)

    def test_an_erased_users_token_gets_401_not_an_empty_page(self, alice_key, erin):
        send(alice_key, "a")
        assert alice_key.delete("/api/v1/users/user-1").status_code == 204
        for path in ("/api/v1/me/notifications", "/api/v1/me/notifications/unread_count"):
            response = erin.get(path)
            assert response.status_code == 401, (path, response.content)
            assert error_code(response) == "unauthenticated"


class TestUnreadCount:
    def test_count_follows_every_change(self, alice_key, erin):
        assert unread(erin) == 0
        send(alice_key, "a")
        send(alice_key, "b")
        send(alice_key, "c")
        assert unread(erin) == 3
        ids = [n["id"] for n in inbox(erin)["results"]]
        erin.patch(f"/api/v1/me/notifications/{ids[0]}", {"is_read": True})
        assert unread(erin) == 2
        erin.patch(f"/api/v1/me/notifications/{ids[0]}", {"is_read": False})
        assert unread(erin) == 3
        erin.patch(f"/api/v1/me/notifications/{ids[1]}", {"archived": True})
        assert unread(erin) == 2
        assert erin.post("/api/v1/me/notifications/read_all").json() == {"updated": 3}
        assert unread(erin) == 0
        send(alice_key, "d")
        assert unread(erin) == 1

    def test_count_is_served_from_the_cache(self, alice_key, erin):
        send(alice_key, "a")
        assert unread(erin) == 1
        with CaptureQueriesContext(connection) as queries:
            assert unread(erin) == 1
        assert not [q for q in queries if "notifications_notification" in q["sql"]]

    def test_a_send_that_creates_recipients_keeps_every_count_right(self, alice_key, erin):
        send(alice_key, "a")
        assert unread(erin) == 1  # cached now
        send(alice_key, "b", recipients=["user-1", "newcomer"])
        assert unread(erin) == 2  # the existing user's cached count was invalidated
        newcomer = _end_user_caller(alice_key, "newcomer")
        assert unread(newcomer) == 1
        send(alice_key, "c", recipients=["newcomer"])
        assert unread(newcomer) == 2  # and once counted, the new user's is invalidated too

    def test_counts_are_kept_per_tenant(self, alice_key, bob_key, erin, bravo_user):
        send(alice_key, "a")
        assert (unread(erin), unread(bravo_user)) == (1, 0)
        send(bob_key, "b")
        send(bob_key, "c")
        assert (unread(erin), unread(bravo_user)) == (1, 2)


class TestChanges:
    def test_mark_read_sets_read_at_and_unread_clears_it(self, alice_key, erin):
        send(alice_key, "a")
        notification_id = inbox(erin)["results"][0]["id"]
        read = erin.patch(f"/api/v1/me/notifications/{notification_id}", {"is_read": True}).json()
        assert read["is_read"] is True
        assert read["read_at"] is not None
        unread_again = erin.patch(f"/api/v1/me/notifications/{notification_id}", {"is_read": False})
        assert unread_again.json()["read_at"] is None

    @pytest.mark.parametrize(
        "body", [{"is_read": "yes"}, {"archived": 1}, {"is_read": True, "color": "red"}]
    )
    def test_bad_patch_is_400_and_changes_nothing(self, alice_key, erin, body):
        send(alice_key, "a")
        notification_id = inbox(erin)["results"][0]["id"]
        response = erin.patch(f"/api/v1/me/notifications/{notification_id}", body)
        assert response.status_code == 400
        assert inbox(erin)["results"][0]["is_read"] is False

    def test_an_empty_patch_changes_nothing_and_answers_the_notification(self, alice_key, erin):
        send(alice_key, "a")
        before = inbox(erin)["results"][0]
        response = erin.patch(f"/api/v1/me/notifications/{before['id']}", {})
        assert response.status_code == 200
        assert response.json() == before

    def test_read_all_touches_only_the_callers_notifications(
        self, alice_key, erin, erins_neighbour
    ):
        send(alice_key, "to both", recipients=("user-1", "user-2"))
        erin.post("/api/v1/me/notifications/read_all")
        assert unread(erins_neighbour) == 1


class TestIsolation:
    def test_another_users_notification_is_404(self, alice_key, erin, erins_neighbour):
        send(alice_key, "for user-2 only", recipients=("user-2",))
        theirs = inbox(erins_neighbour)["results"][0]["id"]
        response = erin.patch(f"/api/v1/me/notifications/{theirs}", {"is_read": True})
        assert response.status_code == 404
        assert error_code(response) == "not_found"
        assert all(n["id"] != theirs for n in inbox(erin)["results"])

    def test_same_external_id_in_another_tenant_sees_nothing_of_tenant_a(
        self, alice_key, erin, bravo_user
    ):
        send(alice_key, "alpha secret")
        assert inbox(bravo_user)["results"] == []
        assert unread(bravo_user) == 0
        alpha_id = inbox(erin)["results"][0]["id"]
        response = bravo_user.patch(f"/api/v1/me/notifications/{alpha_id}", {"is_read": True})
        assert response.status_code == 404

    def test_end_user_token_on_another_tenants_host_is_401(self, erin, world):
        from tests.support.api import Caller

        stolen = Caller(host=world.bob.host, token=erin.token)
        assert stolen.get("/api/v1/me/notifications").status_code == 401

    def test_server_credentials_cannot_use_end_user_endpoints(self, alice_key, alice_admin):
        for caller in (alice_key, alice_admin):
            response = caller.get("/api/v1/me/notifications")
            assert response.status_code == 403
            assert error_code(response) == "forbidden"

    def test_end_user_token_cannot_use_tenant_endpoints(self, erin):
        for path in (
            "/api/v1/tenant",
            "/api/v1/types",
            "/api/v1/notifications",
            "/api/v1/users/user-1",
        ):
            assert erin.get(path).status_code == 403, path


def test_type_keys_refuse_a_tenant_whose_schema_the_connection_is_not_in(db, world):
    connection.set_tenant(world.tenant_a)
    try:
        with pytest.raises(ValueError, match="another tenant"):
            type_keys(tenant_id=world.tenant_b.pk, type_ids=[1])
        assert type_keys(tenant_id=world.tenant_a.pk, type_ids=[]) == {}
    finally:
        connection.set_schema_to_public()
