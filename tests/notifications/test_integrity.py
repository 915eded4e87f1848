"""What keeps a notification's send, type and recipient right.

The database checks the recipient (a foreign key: users are erased while sends run). The send and
its type are kept by the one statement that writes notifications, ``fan_out_in_app``, which reads
them from the send row it locks; Django cascades and protects on delete. (A foreign key on the send
cost PostgreSQL a check per row: 20 to 40 ms of a 500-recipient send.)"""

from __future__ import annotations

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.services.sending import fan_out_in_app


def _insert(*, send_id: int, type_id: int, recipient_id: int) -> None:
    """Raw SQL, as a bug in set-based SQL could write it, with the constraints checked at once."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(
            f"INSERT INTO {Notification._meta.db_table} (send_id, recipient_id, type_id, title,"
            " message, url, data, created_at) VALUES (%s, %s, %s, '', 'm', '', '{}', %s)",
            [send_id, recipient_id, type_id, timezone.now()],
        )


@pytest.fixture
def parts(db, world):
    with schema_context(world.tenant_a.schema_name):
        first = NotificationType.objects.create(key="integrity.a", name="A")
        send = Send.objects.create(type=first, message="m", channels=["in_app"])
        user = EndUser.objects.create(external_id="integrity-user")
        yield world.tenant_a, send, first, user


def test_a_recipient_that_does_not_exist_is_refused_by_the_database(parts):
    _tenant, send, first, _user = parts
    with pytest.raises(IntegrityError, match="foreign key"):
        _insert(send_id=send.pk, type_id=first.pk, recipient_id=10**12)
    assert not Notification.objects.filter(send=send).exists()


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


def test_deleting_a_send_deletes_its_notifications_and_a_used_type_is_protected(parts):
    tenant, send, first, user = parts
    fan_out_in_app(tenant=tenant, send=send, user_ids=[user.pk], now=timezone.now())
    with pytest.raises(ProtectedError):
        first.delete()
    send.delete()
    assert not Notification.objects.filter(send_id=send.pk).exists()


def test_a_send_being_written_cannot_be_deleted_until_commit(world, committed):
    """The writer's lock on the send row does what the foreign key's did: another transaction
    that deletes the send waits until the writer has committed."""
    with schema_context(world.tenant_a.schema_name):
        kind = NotificationType.objects.create(key="integrity.lock", name="Lock")
        send = Send.objects.create(type=kind, message="m", channels=["in_app"])
        user = EndUser.objects.create(external_id="integrity-lock-user")
        settings = connection.settings_dict
        table = f"{world.tenant_a.schema_name}.{Send._meta.db_table}"
        try:
            with transaction.atomic():
                fan_out_in_app(
                    tenant=world.tenant_a, send=send, user_ids=[user.pk], now=timezone.now()
                )
                with psycopg.connect(
                    dbname=settings["NAME"],
                    host=settings["HOST"] or "127.0.0.1",
                    port=settings["PORT"] or 5432,
                    user=settings["USER"],
                    autocommit=True,
                ) as other:
                    other.execute("SET lock_timeout = '200ms'")
                    with pytest.raises(psycopg.errors.LockNotAvailable):
                        other.execute(f"DELETE FROM {table} WHERE id = %s", [send.pk])
            assert Notification.objects.filter(send=send).count() == 1
        finally:
            Notification.objects.filter(send=send).delete()
            send.delete()
            user.delete()
            kind.delete()
