"""The rules with one owner (``notifications.rules``): the unread predicate in its ORM and SQL
forms, and the type-key pattern as every layer applies it."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import Resolver404, resolve
from django.utils import timezone
from django_tenants.utils import schema_context

from dashboard.urls_content import TypeKeyConverter
from notifications import rules
from notifications.models import EndUser, Notification, NotificationType, Send

KEYS = [
    "a", "comment", "billing.invoice", "a_b-c.d", "9lives", "x" * 100,
    "", "x" * 101, "Comment", "-lead", ".lead", "_lead", "a b", "a/b", "ünï", "a\n", "a$",
]  # fmt: skip


@pytest.mark.django_db
def test_the_orm_and_sql_forms_of_unread_pick_the_same_rows(world):
    now = timezone.now()
    with schema_context(world.tenant_a.schema_name):
        user = EndUser.objects.create(external_id="rules-unread")
        kind, _ = NotificationType.objects.get_or_create(key="rules", defaults={"name": "rules"})
        send = Send.objects.create(
            type=kind, message="m", channels=["in_app"], recipient_count=4, created_at=now
        )
        states = [(None, None), (now, None), (None, now), (now, now)]
        ids = [
            Notification.objects.create(
                send=send, recipient=user, type=kind, message="m", created_at=now,
                read_at=read_at, archived_at=archived_at,
            ).pk
            for read_at, archived_at in states
        ]  # fmt: skip
        by_orm = set(
            Notification.objects.filter(rules.UNREAD, recipient=user).values_list("id", flat=True)
        )
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT n.id FROM {Notification._meta.db_table} n "
                f"WHERE n.recipient_id = %s AND {rules.unread_sql('n')}",
                [user.pk],
            )
            by_sql = {row[0] for row in cursor.fetchall()}
            cursor.execute(
                f"SELECT id FROM {Notification._meta.db_table} "
                f"WHERE recipient_id = %s AND {rules.unread_sql()}",
                [user.pk],
            )
            unaliased = {row[0] for row in cursor.fetchall()}
    assert by_orm == by_sql == unaliased == {ids[0]}


def test_the_unread_index_is_built_on_the_rule():
    index = next(i for i in Notification._meta.indexes if i.name == "notif_inbox_unread")
    assert index.condition == rules.UNREAD


@pytest.mark.parametrize("key", KEYS)
def test_every_form_of_the_type_key_rule_agrees(key):
    valid = rules.type_key_valid(key)
    assert valid == (re.fullmatch(rules.TYPE_KEY_PATTERN, key) is not None)
    assert valid == (re.fullmatch(TypeKeyConverter.regex, key) is not None)
    assert valid == (key in KEYS[:6])


def test_the_dashboard_routes_exactly_the_valid_keys(settings):
    settings.ROOT_URLCONF = "dashboard.urls_content"
    assert resolve("/types/billing.invoice/edit").kwargs == {"key": "billing.invoice"}
    with pytest.raises(Resolver404):
        resolve("/types/Billing/edit")


def test_the_api_refuses_an_invalid_key_naming_the_rule(alice_key):
    response = alice_key.put("/api/v1/types/Bad!", {"name": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"key": [rules.TYPE_KEY_MESSAGE]}
