"""Notification type keys by id, as this process has seen them: the inbox page's type keys.

An inbox page names each notification's type by key, and the type table is the one table of
the page that a process can know without asking: a type's key never changes (the API and the
dashboard refuse to edit it) and its id is never given to another type (an identity column),
so an entry is true for as long as the type exists, and a notification keeps its type
(``on_delete=PROTECT``). Reading the keys here rather than joining the type table matters with
thousands of tenants: every table a statement names costs a backend that has not served the
tenant's schema yet the catalog entries of the table and its indexes, 0.5 to 1 ms with 10,000
tenants on the server (``bench/tenants.py``), and such backends serve most requests there.

Entries are keyed by tenant id and type id, filled by each send (``type_key_seen``) and by the
pages that miss (one query for all the page's missing types), and bounded: 65,536 entries,
a few MiB. Nothing rests on an entry being there.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection

from herald.bounded import BoundedMap
from notifications.models import NotificationType

_KEYS: BoundedMap[tuple[int, int], str] = BoundedMap(65536)


def type_key_seen(*, tenant_id: int, notification_type: NotificationType) -> None:
    """Remember the key of a type this process has just read (a send's)."""
    _KEYS.put((tenant_id, notification_type.pk), notification_type.key)


def type_keys(*, tenant_id: int, type_ids: Iterable[int]) -> dict[int, str]:
    """The keys of these types of the tenant whose schema the connection is in, by id.

    A type id that names no type (none does: notifications protect theirs) is left out."""
    if getattr(getattr(connection, "tenant", None), "pk", tenant_id) != tenant_id:
        raise ValueError("type_keys: the connection is in another tenant's schema.")
    wanted = set(type_ids)
    held = _KEYS.get_many((tenant_id, type_id) for type_id in wanted)
    keys = {type_id: key for (_tenant, type_id), key in held.items()}
    missing = wanted - keys.keys()
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, key FROM {NotificationType._meta.db_table} WHERE id = ANY(%s)",  # noqa: S608 -- a table name
                [sorted(missing)],
            )
            read = dict(cursor.fetchall())
        _KEYS.put_many({(tenant_id, type_id): key for type_id, key in read.items()})
        keys.update(read)
    return keys
