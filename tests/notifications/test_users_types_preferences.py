"""End users (upsert, read, erase, tokens), notification types and preferences."""

from __future__ import annotations

import pytest
from django_tenants.utils import schema_context

from notifications.models import EndUser, Notification, Preference
from tests.support.api import Caller, error_code


class TestUsers:
    def test_upsert_creates_then_updates_only_given_fields(self, alice_key):
        created = alice_key.put(
            "/api/v1/users/u-42",
            {"email": "u42@example.com", "name": "Ann", "locale": "pt-BR",
             "timezone": "Europe/Lisbon", "data": {"plan": "gold"}},
        )  # fmt: skip
        assert created.status_code == 201
        assert created.json()["id"] == "u-42"
        updated = alice_key.put("/api/v1/users/u-42", {"name": "Ann B."})
        assert updated.status_code == 200
        body = alice_key.get("/api/v1/users/u-42").json()
        assert (body["name"], body["email"], body["locale"]) == (
            "Ann B.",
            "u42@example.com",
            "pt-BR",
        )
        assert body["data"] == {"plan": "gold"}

    @pytest.mark.parametrize(
        "body",
        [{"email": "nope"}, {"timezone": "Mars/Olympus"}, {"locale": "english please"},
         {"data": "text"}, {"name": 7}, {"nickname": "x"}, {"name": "x" * 201}],
    )  # fmt: skip
    def test_bad_input_is_400_and_writes_nothing(self, alice_key, world, body):
        response = alice_key.put("/api/v1/users/u-bad", body)
        assert response.status_code == 400
        assert error_code(response) == "invalid"
        assert alice_key.get("/api/v1/users/u-bad").status_code == 404

    @pytest.mark.parametrize(
        "name",
        ["Bob\r\nBcc: v@evil.example", "Bob\nBcc: v@evil.example", "Bo\tb", "Bo\x1bb",
         "Bo\x7fb", "Bo\x85b", "Bo\u2028b", "Bo\u2029b"],
    )  # fmt: skip
    def test_a_name_with_control_characters_is_400_naming_it(self, alice_key, name):
        alice_key.put("/api/v1/users/u-ctl", {"name": "Bob"})
        response = alice_key.put("/api/v1/users/u-ctl", {"name": name})
        assert response.status_code == 400
        assert error_code(response) == "invalid"
        assert "control characters" in response.json()["error"]["details"]["name"][0]
        assert alice_key.get("/api/v1/users/u-ctl").json()["name"] == "Bob"

    def test_a_name_with_accents_quotes_and_emoji_is_fine(self, alice_key):
        name = 'Zoë "Zed" O\'Brien, Ph.D. <ops> 🚀'
        response = alice_key.put("/api/v1/users/u-fancy", {"name": name})
        assert response.status_code in (200, 201)
        assert response.json()["name"] == name

    def test_oversize_id_is_400(self, alice_key):
        response = alice_key.put("/api/v1/users/" + "x" * 256, {"name": "x"})
        assert response.status_code == 400
        assert alice_key.post("/api/v1/users/" + "x" * 256 + "/token").status_code == 400
        assert alice_key.get("/api/v1/users/" + "x" * 256).status_code == 404

    def test_unknown_user_is_404(self, alice_key):
        response = alice_key.get("/api/v1/users/nobody")
        assert response.status_code == 404
        assert error_code(response) == "not_found"

    def test_erase_removes_the_user_with_notifications_and_preferences(
        self, alice_key, erin, world
    ):
        alice_key.post(
            "/api/v1/notifications", {"type": "t", "recipients": ["user-1"], "message": "m"}
        )
        erin.put("/api/v1/me/preferences", {"channels": {"email": False}})
        assert alice_key.delete("/api/v1/users/user-1").status_code == 204
        with schema_context(world.tenant_a.schema_name):
            assert not EndUser.objects.filter(external_id="user-1").exists()
            assert not Notification.objects.filter(recipient__external_id="user-1").exists()
            assert not Preference.objects.filter(user__external_id="user-1").exists()
        assert alice_key.get("/api/v1/users/user-1").status_code == 404
        assert alice_key.delete("/api/v1/users/user-1").status_code == 404
        # the erased user's token stops working at once
        assert erin.get("/api/v1/me/notifications").status_code == 401

    def test_tenant_b_cannot_see_or_erase_tenant_a_users(self, bob_key, alice_key):
        alice_key.put("/api/v1/users/only-a", {"name": "A"})
        assert bob_key.get("/api/v1/users/only-a").status_code == 404
        assert bob_key.delete("/api/v1/users/only-a").status_code == 404
        assert alice_key.get("/api/v1/users/only-a").status_code == 200


class TestEndUserTokens:
    def test_token_for_an_unknown_user_creates_the_user(self, alice_key):
        response = alice_key.post("/api/v1/users/brand-new/token")
        assert response.status_code == 200
        assert set(response.json()) == {"token", "expires_at"}
        assert alice_key.get("/api/v1/users/brand-new").status_code == 200
        me = Caller(host=alice_key.host, token=response.json()["token"])
        assert me.get("/api/v1/me/notifications").status_code == 200

    def test_end_user_token_cannot_mint_tokens(self, erin):
        assert erin.post("/api/v1/users/user-2/token").status_code == 403

    def test_token_works_on_the_platform_host_for_its_own_tenant_only(self, erin, world):
        platform = Caller(host="localhost", token=erin.token)
        assert platform.get("/api/v1/me/notifications").status_code == 200


class TestTypes:
    def test_put_creates_then_updates(self, alice_key):
        created = alice_key.put(
            "/api/v1/types/order.shipped",
            {"name": "Order shipped", "channels": ["in_app", "email"], "critical": False,
             "digest_window_seconds": 600, "email_subject": "Order {{ data.order }} shipped",
             "email_text": "Hi {{ name }}", "email_html": "<p>Hi {{ name }}</p>"},
        )  # fmt: skip
        assert created.status_code == 201
        assert created.json()["channels"] == ["in_app", "email"]
        updated = alice_key.put("/api/v1/types/order.shipped", {"digest_window_seconds": None})
        assert updated.status_code == 200
        body = alice_key.get("/api/v1/types/order.shipped").json()
        assert body["digest_window_seconds"] is None
        assert body["name"] == "Order shipped"

    def test_list_is_paged_newest_first(self, alice_key):
        for key in ("t-a", "t-b", "t-c"):
            alice_key.put(f"/api/v1/types/{key}", {})
        page = alice_key.get("/api/v1/types", {"limit": 2}).json()
        assert [t["key"] for t in page["results"]] == ["t-c", "t-b"]
        rest = alice_key.get("/api/v1/types", {"cursor": page["next_cursor"]}).json()
        assert "t-a" in [t["key"] for t in rest["results"]]

    @pytest.mark.parametrize(
        ("key", "body", "field"),
        [("Bad Key", {}, "key"), ("ok", {"channels": ["fax"]}, "channels"),
         ("ok", {"critical": "yes"}, "critical"),
         ("ok", {"digest_window_seconds": 5}, "digest_window_seconds"),
         ("ok", {"email_subject": "{% if %}"}, "email_subject"), ("ok", {"colour": 1}, "colour")],
    )  # fmt: skip
    def test_bad_input_is_400(self, alice_key, key, body, field):
        response = alice_key.put(f"/api/v1/types/{key}", body)
        assert response.status_code == 400
        assert field in response.json()["error"]["details"]
        assert alice_key.get(f"/api/v1/types/{key}").status_code == 404

    def test_a_get_body_can_be_written_back_with_one_field_changed(self, alice_key):
        alice_key.put("/api/v1/types/digest.weekly", {"name": "Weekly"})
        body = alice_key.get("/api/v1/types/digest.weekly").json()
        response = alice_key.put("/api/v1/types/digest.weekly", {**body, "critical": True})
        assert response.status_code == 200
        after = response.json()
        assert (after["key"], after["name"], after["critical"]) == ("digest.weekly", "Weekly", True)
        assert after["created_at"] == body["created_at"]

    def test_a_changed_key_in_the_body_is_400_naming_it(self, alice_key):
        alice_key.put("/api/v1/types/keep", {"name": "Keep"})
        body = alice_key.get("/api/v1/types/keep").json()
        response = alice_key.put("/api/v1/types/keep", {**body, "key": "renamed"})
        assert response.status_code == 400
        assert "key" in response.json()["error"]["details"]
        assert alice_key.get("/api/v1/types/renamed").status_code == 404

    def test_types_are_per_tenant(self, alice_key, bob_key):
        alice_key.put("/api/v1/types/alpha-only", {"name": "A"})
        assert bob_key.get("/api/v1/types/alpha-only").status_code == 404
        assert "alpha-only" not in [
            t["key"] for t in bob_key.get("/api/v1/types").json()["results"]
        ]


class TestPreferences:
    def test_defaults_are_on_for_every_type(self, alice_key, erin):
        alice_key.put("/api/v1/types/news", {})
        body = erin.get("/api/v1/me/preferences").json()
        assert body["channels"] == {"email": True, "in_app": True, "push": True}
        assert body["types"]["news"] == {"email": True, "in_app": True, "push": True}

    def test_put_changes_only_what_it_names(self, alice_key, erin):
        alice_key.put("/api/v1/types/news", {})
        erin.put("/api/v1/me/preferences", {"channels": {"email": False}})
        body = erin.put("/api/v1/me/preferences", {"types": {"news": {"in_app": False}}}).json()
        assert body["channels"] == {"email": False, "in_app": True, "push": True}
        assert body["types"]["news"] == {"email": True, "in_app": False, "push": True}

    @pytest.mark.parametrize(
        "body",
        [{"channels": {"sms": True}}, {"channels": {"email": "no"}},
         {"types": {"Not A Type Key": {"email": False}}}, {"types": []}, {"volume": 11},
         {"types": {f"t{n}": {} for n in range(101)}}],
    )  # fmt: skip
    def test_bad_input_is_400_and_changes_nothing(self, erin, body):
        before = erin.get("/api/v1/me/preferences").json()
        response = erin.put("/api/v1/me/preferences", body)
        assert response.status_code == 400
        assert erin.get("/api/v1/me/preferences").json() == before

    def test_a_type_not_sent_yet_is_created_and_keeps_the_switch(self, alice_key, erin):
        body = erin.put("/api/v1/me/preferences", {"types": {"launch": {"email": False}}}).json()
        assert body["types"]["launch"] == {"email": False, "in_app": True, "push": True}
        created = alice_key.get("/api/v1/types/launch").json()
        assert (created["name"], created["channels"]) == ("launch", ["in_app"])  # as a send would

    def test_preferences_are_per_user(self, erin, erins_neighbour):
        erin.put("/api/v1/me/preferences", {"channels": {"in_app": False}})
        assert erins_neighbour.get("/api/v1/me/preferences").json()["channels"]["in_app"] is True

    def test_server_credentials_cannot_read_preferences_endpoint(self, alice_key):
        assert alice_key.get("/api/v1/me/preferences").status_code == 403


def test_a_type_template_that_does_not_compile_is_400_and_nothing_is_written(alice_key):
    response = alice_key.put(
        "/api/v1/types/broken-template", {"name": "Broken", "email_html": "{% if %}<p>x</p>"}
    )
    assert response.status_code == 400
    assert "email_html" in response.json()["error"]["details"]
    assert alice_key.get("/api/v1/types/broken-template").status_code == 404
