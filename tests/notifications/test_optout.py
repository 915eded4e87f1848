"""The opt-out rule's one owner (``services.preferences``): its SQL (``optout_sql`` and its
negation ``reaches_sql``) and its Python check (``switches_off`` + ``opted_out``) agree on every
case of a table of switches."""

from __future__ import annotations

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from notifications.models import EndUser, NotificationType, Preference
from notifications.services.preferences import opted_out, optout_sql, reaches_sql, switches_off

# (switches as (type: "this", "other" or None for all types, channel, enabled), critical,
#  opted out of email for "this" type)
CASES = [
    ((), False, False),
    ([(None, "email", False)], False, True),
    ([("this", "email", False)], False, True),
    ([("other", "email", False)], False, False),
    ([(None, "in_app", False)], False, False),
    ([("this", "in_app", False)], False, False),
    ([(None, "email", True)], False, False),
    ([("this", "email", True)], False, False),
    ([(None, "email", True), ("this", "email", False)], False, True),
    ([(None, "email", False), ("this", "email", True)], False, True),
    ([(None, "email", False)], True, False),
    ([("this", "email", False)], True, False),
    ([(None, "email", False), ("this", "email", False), ("other", "in_app", False)], True, False),
]


@pytest.mark.parametrize(("switches", "critical", "expected"), CASES)
def test_sql_and_python_agree(db, world, switches, critical, expected):
    with tenant_context(world.tenant_a):
        user = EndUser.objects.create(external_id="opt-out-case")
        types = {
            name: NotificationType.objects.create(key=f"optout-{name}", name=name)
            for name in ("this", "other")
        }
        for type_name, channel, enabled in switches:
            Preference.objects.create(
                user=user, type=types.get(type_name), channel=channel, enabled=enabled
            )
        this = types["this"].pk
        params = {"user": user.pk, "channel": "email", "type": this, "critical": critical}
        fragment = {"user": "%(user)s", "channel": "%(channel)s", "type_id": "%(type)s",
                    "critical": "%(critical)s"}  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {optout_sql(**fragment)}, {reaches_sql(**fragment)}",
                params,
            )
            in_sql, reaches = cursor.fetchone()
        in_python = opted_out(
            switches_off(user_ids={user.pk}, channel="email"), user.pk, this, critical=critical
        )

    assert (in_sql, in_python, not reaches) == (expected, expected, expected)
