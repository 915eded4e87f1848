"""The database itself guards a notification's send, type and recipient (foreign keys), even
though the notification table keeps only the indexes its reads need."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django_tenants.utils import schema_context

from notifications.models import EndUser, Notification, NotificationType, Send


def _execute(sql: str, params: list) -> None:
    """Raw SQL, as a bug in set-based SQL could write it, with the constraints checked at once."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(sql, params)


def _insert(*, send_id: int, type_id: int, recipient_id: int) -> None:
    _execute(
        f"INSERT INTO {Notification._meta.db_table} (send_id, recipient_id, type_id, title,"
        " message, url, data, created_at) VALUES (%s, %s, %s, '', 'm', '', '{}', %s)",
        [send_id, recipient_id, type_id, timezone.now()],
    )


@pytest.fixture
def parts(db, world):
    with schema_context(world.tenant_a.schema_name):
        first = NotificationType.objects.create(key="integrity.a", name="A")
        other = NotificationType.objects.create(key="integrity.b", name="B")
        send = Send.objects.create(type=first, message="m", channels=["in_app"])
        user = EndUser.objects.create(external_id="integrity-user")
        yield send, first, other, user


def test_a_row_of_its_sends_type_is_accepted(parts):
    send, first, _other, user = parts
    _insert(send_id=send.pk, type_id=first.pk, recipient_id=user.pk)
    assert Notification.objects.filter(send=send).count() == 1


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"type": "other"}, id="another type than the send's"),
        pytest.param({"send": 10**12}, id="a send that does not exist"),
        pytest.param({"recipient": 10**12}, id="a recipient that does not exist"),
    ],
)
def test_rows_that_break_a_reference_are_refused(parts, broken):
    send, first, other, user = parts
    ids = {"send_id": send.pk, "type_id": first.pk, "recipient_id": user.pk}
    if "type" in broken:
        ids["type_id"] = other.pk
    if "send" in broken:
        ids["send_id"] = broken["send"]
    if "recipient" in broken:
        ids["recipient_id"] = broken["recipient"]
    with pytest.raises(IntegrityError, match="foreign key"):
        _insert(**ids)
    assert not Notification.objects.filter(send=send).exists()


def test_a_send_with_notifications_keeps_its_type(parts):
    send, first, other, user = parts
    _insert(send_id=send.pk, type_id=first.pk, recipient_id=user.pk)
    with pytest.raises(IntegrityError, match="foreign key"):
        _execute(
            f"UPDATE {Send._meta.db_table} SET type_id = %s WHERE id = %s", [other.pk, send.pk]
        )
