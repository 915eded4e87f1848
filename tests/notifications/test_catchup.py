"""The catch-up after a real-time gap: what each connection missed, batched per tenant.

The notifications are made through the real web process (committed); ``catch_up`` runs here, on
an event loop of its own, against the same database."""

from __future__ import annotations

import asyncio
import time

import pytest
from django_tenants.utils import schema_context

from notifications import catchup
from notifications.models import EndUser
from tests.notifications.test_realtime import Live, new_user
from tests.support.aio import run_loop


@pytest.fixture
def lives(web, world) -> tuple[Live, Live]:
    return Live(web, world.alice.host, world.alice.api_key), Live(
        web, world.bob.host, world.bob.api_key
    )


def _user_pk(schema_name: str, external_id: str) -> int:
    with schema_context(schema_name):
        return EndUser.objects.get(external_id=external_id).pk


def test_one_statement_per_tenant_and_chunk_and_only_the_unknown_payloads(
    lives, world, django_db_blocker, monkeypatch
):
    alpha, bravo = lives
    people = [(alpha, world.tenant_a, new_user()) for _ in range(3)]
    people.append((bravo, world.tenant_b, new_user()))
    tokens = []
    for live, _tenant, user in people:
        tokens.append(live.token(user))
        live.send(user, "one")
        live.send(user, "two")
    first, second = sorted(alpha.inbox_ids(tokens[0]))
    alpha.call("PATCH", f"/api/v1/me/notifications/{first}", {"is_read": True}, token=tokens[0])

    calls = {"state": 0, "payloads": 0}
    inbox_state, payloads = catchup._inbox_state, catchup._payloads

    def counted_state(*args):
        calls["state"] += 1
        return inbox_state(*args)

    def counted_payloads(*args):
        calls["payloads"] += 1
        return payloads(*args)

    monkeypatch.setattr(catchup, "_inbox_state", counted_state)
    monkeypatch.setattr(catchup, "_payloads", counted_payloads)
    monkeypatch.setattr(catchup, "USERS_PER_STATEMENT", 2)

    with django_db_blocker.unblock():
        pks = [_user_pk(tenant.schema_name, user) for _live, tenant, user in people]
        known = [{first}, set(), set(), set()]
        lost_at = time.time() - 5

        async def scenario():
            futures = [
                catchup.catch_up(
                    schema_name=tenant.schema_name, user_id=pk, known=ids, lost_at=lost_at
                )
                for (_live, tenant, _user), pk, ids in zip(people, pks, known, strict=True)
            ]
            return await asyncio.gather(*futures)

        results = run_loop(scenario())

    # Tenant A's three users in two chunks, tenant B's one: three statements, not four.
    assert calls == {"state": 3, "payloads": 3}
    mine = results[0]
    assert [n["id"] for n in mine.notifications] == [second]  # the first one it knew
    assert mine.window_ids == [first, second]
    assert mine.read_ids == [first]
    assert mine.unread == 1
    for result, (live, _tenant, _user), token in zip(
        results[1:], people[1:], tokens[1:], strict=True
    ):
        assert [n["id"] for n in result.notifications] == sorted(live.inbox_ids(token))
        assert [n["message"] for n in result.notifications] == ["one", "two"]
        assert result.unread == 2
        assert result.read_ids == []


def test_too_much_missed_is_refused_rather_than_replayed(
    lives, world, django_db_blocker, monkeypatch
):
    alpha, _ = lives
    user = new_user()
    token = alpha.token(user)
    for n in range(3):
        alpha.send(user, f"n{n}")
    assert len(alpha.inbox_ids(token)) == 3
    with django_db_blocker.unblock():
        pk = _user_pk(world.tenant_a.schema_name, user)

        async def scenario():
            return await catchup.catch_up(
                schema_name=world.tenant_a.schema_name,
                user_id=pk,
                known=set(),
                lost_at=time.time(),
            )

        monkeypatch.setattr(catchup, "MAX_MISSED", 2)  # it missed three
        with pytest.raises(catchup.TooFarBehind):
            run_loop(scenario())
