"""What keeps a notification's send, type and recipient right.

Notifications have no foreign-key constraints in the database: PostgreSQL checked each once per
inserted row (20 to 40 ms of a 500-recipient send for the send's, ~3 ms for the recipient's). The
one statement that writes notifications, ``fan_out_in_app``, reads the send and its type from the
send row and writes only for users it finds, locking both (FOR KEY SHARE) until commit, or
for users a large send holds from erasure (``recipients_hold``); ``user_erase`` waits for the
holds and locks the user before it collects; Django cascades and protects on delete. These
tests hold each of those promises, with the concurrent cases run on real connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg
import pytest
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.channels.in_app.fan_out import fan_out_in_app
from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.services.users import (
    RecipientInput,
    Recipients,
    recipients_hold,
    recipients_upsert,
    user_erase,
)

LOCK_WAIT = 10  # seconds a test waits for the other connection to queue on a lock


@pytest.fixture
def parts(db, world):
    with schema_context(world.tenant_a.schema_name):
        first = NotificationType.objects.create(key="integrity.a", name="A")
        send = Send.objects.create(type=first, message="m", channels=["in_app"])
        user = EndUser.objects.create(external_id="integrity-user")
        yield world.tenant_a, send, first, user


def test_the_writer_takes_send_and_type_from_the_send_row(parts):
    tenant, send, first, user = parts
    created = fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk], now=timezone.now())
    assert [user_id for _id, user_id in created] == [user.pk]
    row = Notification.objects.get(send=send)
    assert (row.send_id, row.type_id, row.recipient_id) == (send.pk, first.pk, user.pk)


def test_the_writer_writes_nothing_for_a_send_that_is_gone(parts):
    tenant, send, _first, user = parts
    Send.objects.filter(pk=send.pk).delete()
    assert fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk], now=timezone.now()) == []
    assert not Notification.objects.filter(send_id=send.pk).exists()


def test_the_writer_writes_nothing_for_a_user_that_is_gone(parts):
    tenant, send, _first, user = parts
    gone = EndUser.objects.create(external_id="integrity-gone")
    gone_id = gone.pk
    gone.delete()
    created = fan_out_in_app(
        tenant=tenant, send=send, user_ids=[gone_id, user.pk, 10**12], now=timezone.now()
    )
    assert [user_id for _id, user_id in created] == [user.pk]
    assert list(Notification.objects.filter(send=send).values_list("recipient_id", flat=True)) == [
        user.pk
    ]


def test_deleting_a_send_deletes_its_notifications_and_a_used_type_is_protected(parts):
    tenant, send, first, user = parts
    fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk], now=timezone.now())
    with pytest.raises(ProtectedError):
        first.delete()
    send.delete()
    assert not Notification.objects.filter(send_id=send.pk).exists()


def test_erasing_a_user_deletes_their_notifications(parts):
    tenant, send, _first, user = parts
    other = EndUser.objects.create(external_id="integrity-other")
    fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk, other.pk], now=timezone.now())
    user_erase(tenant_id=tenant.pk, user=user)
    assert list(Notification.objects.filter(send=send).values_list("recipient_id", flat=True)) == [
        other.pk
    ]


# --- Two connections ------------------------------------------------------------------------------


def _other_connection() -> psycopg.Connection[Any]:
    settings = connection.settings_dict
    return psycopg.connect(
        dbname=settings["NAME"],
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        autocommit=True,
    )


def _wait_until_blocked(
    watcher: psycopg.Connection[Any], done: threading.Event, waiters: int = 1
) -> None:
    """Poll until ``waiters`` other backends of this database wait on a lock (or the work
    finished)."""
    deadline = time.monotonic() + LOCK_WAIT
    while time.monotonic() < deadline and not done.is_set():
        waiting = watcher.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'"
        ).fetchone()
        if waiting and waiting[0] >= waiters:
            return
        time.sleep(0.01)
    raise AssertionError("the other transaction never waited on a lock")


class InThread:
    """Run ``work`` in the tenant's schema on a thread (so on a connection) of its own."""

    def __init__(self, schema: str, work: Callable[[], Any]) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(schema, work), daemon=True)
        self._thread.start()

    def _run(self, schema: str, work: Callable[[], Any]) -> None:
        try:
            with schema_context(schema):
                self.result = work()
        except BaseException as exc:  # re-raised in the test's thread by join()
            self.error = exc
        finally:
            connection.close()
            self.done.set()

    def join(self) -> Any:
        self._thread.join(LOCK_WAIT)
        assert self.done.is_set(), "the other transaction did not finish"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def committed_parts(world, committed) -> Iterator[tuple[Any, Send, EndUser, EndUser]]:
    tenant = world.tenant_a
    with schema_context(tenant.schema_name):
        kind = NotificationType.objects.create(key="integrity.lock", name="Lock")
        send = Send.objects.create(type=kind, message="m", channels=["in_app"])
        user = EndUser.objects.create(external_id="integrity-lock-user")
        other = EndUser.objects.create(external_id="integrity-lock-other")
        try:
            yield tenant, send, user, other
        finally:
            Notification.objects.filter(send=send).delete()
            EndUser.objects.filter(pk__in=[user.pk, other.pk]).delete()
            send.delete()
            kind.delete()


@pytest.mark.parametrize("model", [Send, EndUser], ids=["send", "recipient"])
def test_a_send_or_user_being_written_cannot_be_deleted_until_commit(committed_parts, model):
    """The writer's locks do what foreign keys would: another transaction that deletes the
    send, or a recipient, waits until the writer has committed."""
    tenant, send, user, _other = committed_parts
    row_id = send.pk if model is Send else user.pk
    table = f"{tenant.schema_name}.{model._meta.db_table}"
    with transaction.atomic():
        fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk], now=timezone.now())
        with _other_connection() as other:
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f"DELETE FROM {table} WHERE id = %s", [row_id])
    assert Notification.objects.filter(send=send, recipient=user).count() == 1


def test_the_recipients_a_send_looks_up_cannot_be_deleted_until_commit(committed_parts):
    """A send locks its recipients as it looks them up, so its fan-out can trust them
    (``users_locked``): deleting one waits until the send has committed."""
    tenant, _send, user, _other = committed_parts
    table = f"{tenant.schema_name}.{EndUser._meta.db_table}"
    with transaction.atomic():
        found = recipients_upsert([RecipientInput(user.external_id)], lock=True)
        assert found.ids == [user.pk]
        with _other_connection() as other:
            other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(psycopg.errors.LockNotAvailable):
                other.execute(f"DELETE FROM {table} WHERE id = %s", [user.pk])


@pytest.mark.parametrize("held", [False, True], ids=["row-locks", "hold"])
def test_an_erase_during_a_send_waits_for_it_and_takes_its_rows(committed_parts, held):
    """The send writes first; the erase queues on the user's row (or, behind a large send,
    on its hold of the tenant's users: ``recipients_hold``) and, once the send commits,
    collects the rows that send wrote: nothing is left pointing at the erased user."""
    tenant, send, user, other_user = committed_parts
    table = f"{tenant.schema_name}.{EndUser._meta.db_table}"
    with _other_connection() as watcher:
        with transaction.atomic():
            if held:
                recipients_hold(tenant_id=tenant.pk)
                found = recipients_upsert(
                    [RecipientInput(user.external_id), RecipientInput(other_user.external_id)]
                )
                assert found.ids == [user.pk, other_user.pk]
                with _other_connection() as other:  # no row lock: only the hold keeps them
                    other.execute("BEGIN")
                    other.execute(
                        f"SELECT 1 FROM {table} WHERE id = %s FOR UPDATE NOWAIT", [user.pk]
                    )
                    other.execute("ROLLBACK")
            fan_out_in_app(
                tenant=tenant,
                send=send,
                user_ids=[user.pk, other_user.pk],
                now=timezone.now(),
                users_locked=held,
            )
            erase = InThread(
                tenant.schema_name,
                lambda: user_erase(tenant_id=tenant.pk, user=EndUser(pk=user.pk)),
            )
            _wait_until_blocked(watcher, erase.done)
        erase.join()
    assert not EndUser.objects.filter(pk=user.pk).exists()
    assert not Notification.objects.filter(recipient_id=user.pk).exists()
    assert Notification.objects.filter(send=send, recipient=other_user).count() == 1


def test_a_send_during_an_erase_waits_for_it_and_skips_the_user(committed_parts):
    """The erase goes first (on another connection, as a concurrent request would); the send's
    writer queues on the user's row and, once the erase commits, writes only for the others."""
    tenant, send, user, other_user = committed_parts
    schema = tenant.schema_name
    with _other_connection() as eraser, _other_connection() as watcher:
        eraser.execute("BEGIN")
        eraser.execute(
            f"SELECT 1 FROM {schema}.{EndUser._meta.db_table} WHERE id = %s FOR UPDATE", [user.pk]
        )
        eraser.execute(f"DELETE FROM {schema}.{EndUser._meta.db_table} WHERE id = %s", [user.pk])

        def send_now() -> list[tuple[int, int]]:
            with transaction.atomic():
                return fan_out_in_app(
                    tenant=tenant,
                    send=Send.objects.get(pk=send.pk),
                    user_ids=[user.pk, other_user.pk],
                    now=timezone.now(),
                )

        sending = InThread(schema, send_now)
        _wait_until_blocked(watcher, sending.done)
        eraser.execute("COMMIT")
        created = sending.join()
    assert [user_id for _id, user_id in created] == [other_user.pk]
    assert not Notification.objects.filter(recipient_id=user.pk).exists()


def test_a_recipient_another_send_creates_meanwhile_is_found(committed_parts):
    """Looked up as unknown, then inserted while another transaction inserts the same external
    id: the insert waits, meets the conflict once the other commits, and looks the user up."""
    tenant, _send, _user, _other_user = committed_parts
    schema = tenant.schema_name
    external_id = "integrity-race-user"
    with _other_connection() as rival, _other_connection() as watcher:
        rival.execute("BEGIN")
        rival.execute(
            f"INSERT INTO {schema}.{EndUser._meta.db_table} (external_id, email, name, locale,"
            " timezone, data, created_at, updated_at)"
            " VALUES (%s, '', '', '', '', '{}', now(), now())",
            [external_id],
        )

        def upsert() -> Recipients:
            with transaction.atomic():
                return recipients_upsert([RecipientInput(external_id), RecipientInput("race-2")])

        upserting = InThread(schema, upsert)
        _wait_until_blocked(watcher, upserting.done)
        rival.execute("COMMIT")
        result = upserting.join()
    try:
        rival_id = EndUser.objects.get(external_id=external_id).pk
        assert result.ids[0] == rival_id
        assert rival_id not in result.created
        assert result.created == {result.ids[1]}
    finally:
        EndUser.objects.filter(external_id__in=[external_id, "race-2"]).delete()


def test_a_held_send_during_an_erase_waits_and_does_not_find_the_user(committed_parts):
    """An erase in progress (here queued behind a small send's row lock) keeps a large send
    from starting its lookup until the erase commits: the lookup then finds the user gone
    (the API's send would create them anew, with nothing of the erased user's)."""
    tenant, _send, user, other_user = committed_parts
    schema = tenant.schema_name
    recipients = [RecipientInput(user.external_id), RecipientInput(other_user.external_id)]
    with _other_connection() as small_send, _other_connection() as watcher:
        small_send.execute("BEGIN")
        small_send.execute(
            f"SELECT 1 FROM {schema}.{EndUser._meta.db_table} WHERE id = %s FOR KEY SHARE",
            [user.pk],
        )
        erase = InThread(schema, lambda: user_erase(tenant_id=tenant.pk, user=EndUser(pk=user.pk)))
        _wait_until_blocked(watcher, erase.done)

        def held_lookup() -> list[int]:
            with transaction.atomic():
                recipients_hold(tenant_id=tenant.pk)
                return recipients_upsert(recipients).ids

        looking = InThread(schema, held_lookup)
        _wait_until_blocked(watcher, looking.done, waiters=2)
        small_send.execute("COMMIT")
        erase.join()
        ids = looking.join()
    try:
        assert ids[1] == other_user.pk
        assert ids[0] != user.pk  # a new user of the same external id, not the erased row
        assert not EndUser.objects.filter(pk=user.pk).exists()
    finally:
        EndUser.objects.filter(pk=ids[0]).delete()


def test_holds_are_shared_and_per_tenant(committed_parts, world):
    """Large sends do not wait for each other's hold, and a hold on one tenant keeps no other
    tenant's erasure waiting."""
    tenant, _send, _user, _other_user = committed_parts
    with schema_context(world.tenant_b.schema_name):
        stranger = EndUser.objects.create(external_id="integrity-hold-stranger")
    try:
        with transaction.atomic():
            recipients_hold(tenant_id=tenant.pk)

            def hold_too() -> bool:
                with transaction.atomic():
                    recipients_hold(tenant_id=tenant.pk)
                    return True

            assert InThread(tenant.schema_name, hold_too).join()
            erase = InThread(
                world.tenant_b.schema_name,
                lambda: user_erase(tenant_id=world.tenant_b.pk, user=EndUser(pk=stranger.pk)),
            )
            erase.join()
        with schema_context(world.tenant_b.schema_name):
            assert not EndUser.objects.filter(pk=stranger.pk).exists()
    finally:
        with schema_context(world.tenant_b.schema_name):
            EndUser.objects.filter(pk=stranger.pk).delete()
