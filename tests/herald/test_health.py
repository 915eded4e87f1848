"""/healthz and /readyz, against real processes and a Redis that really stops."""

from __future__ import annotations

from tests.support.processes import free_port, running_web, throwaway_redis, wait_until


def test_readyz_ok_with_real_services(web):
    response = web.get("/readyz")
    assert response.status == 200
    assert response.body == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}


def test_readyz_follows_redis_going_down_and_coming_back(django_db_setup, world):
    port = free_port()
    auth = {"host": world.alice.host, "Authorization": f"Bearer {world.alice.api_key}"}
    with running_web(REDIS_URL=f"redis://127.0.0.1:{port}/0") as web:
        with throwaway_redis(port):
            wait_until(lambda: web.get("/readyz").status == 200, what="ready with Redis up")
            assert web.get("/api/v1/tenant", **auth).status == 200  # the registry is cached

        down = wait_until(
            lambda: (r := web.get("/readyz")).status == 503 and r, what="503 with Redis down"
        )
        assert down.body["error"]["code"] == "unavailable"
        assert down.body["error"]["details"]["database"] == "ok"
        assert down.body["error"]["details"]["redis"] != "ok"
        assert "redis" in down.body["error"]["message"]
        assert web.get("/healthz").status == 200  # alive, just not ready
        # the API still serves: tenant and key come from PostgreSQL, rate limits fail open
        assert web.get("/api/v1/tenant", **auth).status == 200

        with throwaway_redis(port):
            wait_until(lambda: web.get("/readyz").status == 200, what="ready again")


def test_readyz_reports_a_database_outage(django_db_setup):
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/nothing"
    with running_web(DATABASE_URL=dead) as web:
        response = web.get("/readyz")
    assert response.status == 503
    assert response.body["error"]["details"]["redis"] == "ok"
    assert response.body["error"]["details"]["database"].startswith("OperationalError")
