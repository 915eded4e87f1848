"""Admin login and refresh, API key management, and the tenant's own settings."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework_simplejwt.tokens import RefreshToken

from tests.support.api import Caller, error_code


def login(host: str, email: str, password: str):
    return Caller(host=host).post("/api/v1/auth/token", {"email": email, "password": password})


class TestAdminLogin:
    def test_login_and_use_the_token(self, db, world):
        response = login(world.alice.host, world.alice.email, world.alice.password)
        assert response.status_code == 200
        assert set(response.json()) == {"access", "refresh"}
        admin = Caller(host=world.alice.host, token=response.json()["access"])
        assert admin.get("/api/v1/tenant").json()["slug"] == "alpha"

    def test_wrong_password_is_401(self, db, world):
        response = login(world.alice.host, world.alice.email, "wrong-password")
        assert response.status_code == 401
        assert error_code(response) == "unauthenticated"

    def test_admin_of_tenant_a_cannot_log_in_on_tenant_b(self, db, world):
        assert login(world.bob.host, world.alice.email, world.alice.password).status_code == 401

    def test_login_on_the_platform_host_is_refused(self, db, world):
        response = login("localhost", world.alice.email, world.alice.password)
        assert response.status_code == 400

    @pytest.mark.parametrize("body", [{}, {"email": "a@b.c"}, {"email": 1, "password": 2}])
    def test_bad_body_is_400(self, db, world, body):
        assert Caller(host=world.alice.host).post("/api/v1/auth/token", body).status_code == 400

    def test_admin_token_of_tenant_a_is_401_on_tenant_b(self, alice_admin, world):
        stolen = Caller(host=world.bob.host, token=alice_admin.token)
        assert stolen.get("/api/v1/tenant").status_code == 401


class TestRefresh:
    def test_refresh_gives_a_working_access_token(self, db, world):
        tokens = login(world.alice.host, world.alice.email, world.alice.password).json()
        response = Caller(host=world.alice.host).post(
            "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}
        )
        assert response.status_code == 200
        admin = Caller(host=world.alice.host, token=response.json()["access"])
        assert admin.get("/api/v1/api-keys").status_code == 200

    def test_refresh_token_of_tenant_a_is_refused_on_tenant_b(self, db, world):
        tokens = login(world.alice.host, world.alice.email, world.alice.password).json()
        response = Caller(host=world.bob.host).post(
            "/api/v1/auth/token/refresh", {"refresh": tokens["refresh"]}
        )
        assert response.status_code == 401

    def test_forged_refresh_token_naming_tenant_b_with_a_user_id_of_a(self, db, world):
        # A refresh token without the tenant claim (stock simplejwt) must not work anywhere.
        bare = RefreshToken()
        bare["sub"] = "1"
        for host in (world.alice.host, world.bob.host):
            response = Caller(host=host).post("/api/v1/auth/token/refresh", {"refresh": str(bare)})
            assert response.status_code == 401

    def test_access_token_used_as_refresh_is_refused(self, alice_admin, world):
        response = Caller(host=world.alice.host).post(
            "/api/v1/auth/token/refresh", {"refresh": alice_admin.token}
        )
        assert response.status_code == 401


class TestApiKeys:
    def test_create_shows_the_key_once_and_it_works(self, alice_admin, world):
        created = alice_admin.post("/api/v1/api-keys", {"name": "CI"})
        assert created.status_code == 201
        key = created.json()["key"]
        assert key.startswith("sk_")
        assert created.json()["prefix"] == key[:11]
        listed = alice_admin.get("/api/v1/api-keys").json()["results"]
        assert listed[0]["name"] == "CI"
        assert "key" not in listed[0]
        assert key not in str(listed)
        assert Caller(host=world.alice.host, token=key).get("/api/v1/tenant").status_code == 200

    def test_revoke_makes_the_key_401_at_once(self, alice_admin, world):
        created = alice_admin.post("/api/v1/api-keys", {"name": "temp"}).json()
        caller = Caller(host=world.alice.host, token=created["key"])
        for _ in range(3):  # used: the key and its tenant are now in the registry cache
            assert caller.get("/api/v1/tenant").status_code == 200
        assert alice_admin.delete(f"/api/v1/api-keys/{created['id']}").status_code == 204
        assert caller.get("/api/v1/tenant").status_code == 401
        listed = alice_admin.get("/api/v1/api-keys").json()["results"]
        assert next(k for k in listed if k["id"] == created["id"])["revoked_at"] is not None

    def test_api_key_cannot_manage_keys(self, alice_key):
        assert alice_key.get("/api/v1/api-keys").status_code == 403
        assert alice_key.post("/api/v1/api-keys", {"name": "x"}).status_code == 403

    def test_end_user_cannot_manage_keys(self, erin):
        assert erin.get("/api/v1/api-keys").status_code == 403

    def test_admin_of_b_cannot_see_or_revoke_keys_of_a(self, alice_admin, db, world):
        a_key = alice_admin.post("/api/v1/api-keys", {"name": "a"}).json()
        tokens = login(world.bob.host, world.bob.email, world.bob.password).json()
        bob_admin = Caller(host=world.bob.host, token=tokens["access"])
        assert a_key["id"] not in [
            k["id"] for k in bob_admin.get("/api/v1/api-keys").json()["results"]
        ]
        assert bob_admin.delete(f"/api/v1/api-keys/{a_key['id']}").status_code == 404
        assert (
            Caller(host=world.alice.host, token=a_key["key"]).get("/api/v1/tenant").status_code
            == 200
        )

    @pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": 5}, {"name": "x" * 101}])
    def test_bad_create_is_400(self, alice_admin, body):
        assert alice_admin.post("/api/v1/api-keys", body).status_code == 400

    def test_last_used_is_shown(self, alice_admin, world):
        created = alice_admin.post("/api/v1/api-keys", {"name": "used"}).json()
        Caller(host=world.alice.host, token=created["key"]).get("/api/v1/tenant")
        listed = alice_admin.get("/api/v1/api-keys").json()["results"]
        used = next(k for k in listed if k["id"] == created["id"])
        assert used["last_used_at"] is not None
        assert used["last_used_at"] <= timezone.now().isoformat().replace("+00:00", "Z")


class TestTenantSettings:
    def test_admin_patches_origins_and_sender(self, alice_admin):
        response = alice_admin.patch(
            "/api/v1/tenant",
            {"allowed_origins": ["https://App.Example.com/", "http://localhost:3000",
                                 "https://a.example.com:65535"],
             "sender_name": "Alpha", "sender_email": "hello@alpha.example.com"},
        )  # fmt: skip
        assert response.status_code == 200
        body = response.json()
        assert body["allowed_origins"] == [
            "https://app.example.com", "http://localhost:3000", "https://a.example.com:65535"
        ]  # fmt: skip
        assert (body["sender_name"], body["sender_email"]) == ("Alpha", "hello@alpha.example.com")

    @pytest.mark.parametrize(
        "body",
        [{"allowed_origins": ["https://x.com/path"]}, {"allowed_origins": ["ftp://x.com"]},
         {"allowed_origins": "https://x.com"}, {"sender_email": "nope"}, {"slug": "renamed"},
         {"allowed_origins": ["https://a.com:99999"]}, {"allowed_origins": ["https://a.com:0"]},
         {"allowed_origins": ["https://a.com:65536"]}],
    )  # fmt: skip
    def test_bad_patch_is_400_and_changes_nothing(self, alice_admin, body):
        before = alice_admin.get("/api/v1/tenant").json()
        assert alice_admin.patch("/api/v1/tenant", body).status_code == 400
        assert alice_admin.get("/api/v1/tenant").json() == before

    @pytest.mark.parametrize("name", ["Alpha\r\nBcc: v@evil.example", "Al\u2028pha", "Al\x00pha"])
    def test_a_sender_name_with_control_characters_is_400_naming_it(self, alice_admin, name):
        before = alice_admin.get("/api/v1/tenant").json()
        response = alice_admin.patch("/api/v1/tenant", {"sender_name": name})
        assert response.status_code == 400
        error = response.json()["error"]
        assert error["code"] == "invalid"
        assert list(error["details"]) == ["sender_name"]
        assert alice_admin.get("/api/v1/tenant").json() == before

    def test_api_key_cannot_patch(self, alice_key):
        assert alice_key.patch("/api/v1/tenant", {"sender_name": "x"}).status_code == 403
