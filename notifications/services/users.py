from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat
from typing import Any, NamedTuple, cast, overload

import orjson
from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.utils import timezone

from herald.realtime import publish_on_commit
from notifications.events import user_erased_message
from notifications.models import EndUser

USER_FIELDS = ("email", "name", "locale", "timezone", "data")


class RecipientInput(NamedTuple):
    """One recipient of a send (a tuple: a send may parse 10,000 of them)."""

    external_id: str
    email: str | None = None
    name: str | None = None
    locale: str | None = None  # normalised (``localisation.locale_normalise``)


class RecipientColumns(Sequence[RecipientInput]):
    """A send's recipients as columns: their external ids, and their emails, names and locales
    (each None when no recipient gives that field; else None for a recipient who does not).

    The send path reads columns: the ids for the lookup, each given field as one JSON array for
    the insert (``_details_params``). The API's field builds them directly, and each
    recipient's ``RecipientInput`` is made only where one is read: making 10,000 of them up
    front, and reading their fields back, cost a 10,000-recipient send about 4 ms with bare ids.
    Other callers may pass any sequence of ``RecipientInput`` (``recipient_columns``)."""

    __slots__ = ("emails", "ids", "locales", "names")

    def __init__(
        self,
        ids: list[str],
        *,
        emails: list[str | None] | None = None,
        names: list[str | None] | None = None,
        locales: list[str | None] | None = None,
    ) -> None:
        self.ids = ids
        self.emails, self.names, self.locales = emails, names, locales

    @classmethod
    def of(cls, recipients: Iterable[RecipientInput]) -> RecipientColumns:
        """The columns of ``recipients``; a field none of them gives has no column."""
        rows = list(recipients)
        ids, *details = [list(column) for column in zip(*rows, strict=True)] or [[], [], [], []]
        emails, names, locales = (
            column if any(value is not None for value in column) else None for column in details
        )
        return cls(ids, emails=emails, names=names, locales=locales)

    @property
    def has_details(self) -> bool:
        return self.emails is not None or self.names is not None or self.locales is not None

    def take(self, positions: list[int]) -> RecipientColumns:
        """The recipients at ``positions``, in that order."""
        return RecipientColumns(
            list(map(self.ids.__getitem__, positions)),
            emails=_taken(self.emails, positions),
            names=_taken(self.names, positions),
            locales=_taken(self.locales, positions),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @overload
    def __getitem__(self, index: int) -> RecipientInput: ...
    @overload
    def __getitem__(self, index: slice) -> RecipientColumns: ...
    def __getitem__(self, index: int | slice) -> RecipientInput | RecipientColumns:
        if isinstance(index, slice):
            return self.take(list(range(len(self.ids)))[index])
        return RecipientInput(
            self.ids[index],
            None if self.emails is None else self.emails[index],
            None if self.names is None else self.names[index],
            None if self.locales is None else self.locales[index],
        )

    def __iter__(self) -> Iterator[RecipientInput]:
        none = repeat(None)
        return map(
            RecipientInput,
            self.ids,
            none if self.emails is None else self.emails,
            none if self.names is None else self.names,
            none if self.locales is None else self.locales,
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, RecipientColumns):
            return (self.ids, self.emails, self.names, self.locales) == (
                other.ids, other.emails, other.names, other.locales
            )  # fmt: skip
        return isinstance(other, Sequence) and list(self) == list(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list is

    def __repr__(self) -> str:
        return (
            f"RecipientColumns({self.ids!r}, emails={self.emails!r}, names={self.names!r}, "
            f"locales={self.locales!r})"
        )


def _taken(column: list[str | None] | None, positions: list[int]) -> list[str | None] | None:
    return None if column is None else list(map(column.__getitem__, positions))


def recipient_columns(recipients: Sequence[RecipientInput]) -> RecipientColumns:
    """``recipients`` as columns (themselves, if they are)."""
    if isinstance(recipients, RecipientColumns):
        return recipients
    return RecipientColumns.of(recipients)


def external_ids(recipients: Sequence[RecipientInput]) -> list[str]:
    """The external ids of ``recipients``, in their order."""
    if isinstance(recipients, RecipientColumns):
        return recipients.ids
    return [r.external_id for r in recipients]


class Recipients(NamedTuple):
    ids: list[int]  # in the order of the recipients given
    created: set[int]  # the ids of users this call created
    # With details: the locale and time zone of each user this call created, by id, as its
    # insert wrote them (``localised_texts`` then reads only the others').
    locales: dict[int, tuple[str, str]] | None = None


def int_array(values: list[int]) -> str:
    """A ``bigint[]`` literal: psycopg's list adapter spends ~5 us per element in Python."""
    return "{" + ",".join(map(str, values)) + "}"


def user_upsert(*, external_id: str, fields: dict[str, Any]) -> tuple[EndUser, bool]:
    """Create or update one end user; only the given fields change. Returns (user, created).
    A ``locale`` is normalised (``localisation.locale_normalise``) by the caller."""
    changes = {name: value for name, value in fields.items() if name in USER_FIELDS}
    user, created = EndUser.objects.get_or_create(external_id=external_id, defaults=changes)
    if not created and changes:
        for name, value in changes.items():
            setattr(user, name, value)
        user.save(update_fields=[*changes, "updated_at"])
    return user, created


# A send's recipients are kept from erasure until it commits in one of two ways (see
# ``user_erase``): row locks (FOR KEY SHARE on each recipient as it is looked up), or, for a
# send to at least ``HOLD_FROM`` recipients, one shared lock on the whole tenant's recipients
# (``recipients_hold``). Row locks cost each row a lock record in its tuple, written to the WAL
# (10,000 recipients: 4 to 6 ms of lookup and about 1 ms of commit), and two sends locking the
# same user make PostgreSQL create a MultiXact for it; a shared advisory lock costs one more
# round trip (~0.1 ms), which row locks beat below some 150 recipients.
HOLD_FROM = 200
# The advisory lock's key: PostgreSQL's two-integer key space (the one-bigint locks elsewhere in
# Herald never meet it), this class of Herald's own ("HRLD" in ASCII) and the tenant's id.
_HOLD_CLASS = 0x48524C44


def recipients_hold(*, tenant_id: int) -> None:
    """Keep every end user of the tenant from erasure until the current transaction ends
    (``user_erase`` waits for it), instead of locking each recipient a send looks up. Shared:
    sends holding it do not wait for each other. Take it before the first statement that looks
    recipients up: that statement's snapshot must not predate an erasure it waited for."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", [_HOLD_CLASS, tenant_id])


@transaction.atomic
def user_erase(*, tenant_id: int, user: EndUser) -> None:
    """Erase an end user with every notification, preference and delivery of theirs.

    A send writing to the user keeps them until it commits: by a lock on their row (FOR KEY
    SHARE), or by holding all of the tenant's users (``recipients_hold``). So the erasure waits
    for both, the hold first and then the row (FOR UPDATE), and collects what to delete only
    after that: the rows of a send in flight go too. A send that comes later finds the user
    gone and writes nothing for them. Once committed, the user's open WebSocket connections
    close (4401), in every web process.
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [_HOLD_CLASS, tenant_id])
    user_id = user.pk
    list(EndUser.objects.select_for_update().filter(pk=user_id).values_list("pk", flat=True))
    user.delete()
    publish_on_commit(lambda: user_erased_message(tenant_id=tenant_id, user_id=user_id))


def recipients_upsert(
    recipients: Sequence[RecipientInput],
    *,
    lock: bool = False,
    known: list[int | None] | None = None,
) -> Recipients:
    """Create unknown recipients and update given emails/names, set-based; returns their ids.

    Ids come back in the order of ``recipients`` (already de-duplicated by the caller). Known
    recipients are looked up first (one array of ids, None for the unknown), and only the
    others are inserted: most sends go to people
    who exist, and an insert that meets its conflict on every row costs twice the lookup
    (19 against 8.5 ms for 10,000). Inserts are sorted by external id so that concurrent sends
    to overlapping sets cannot deadlock; a recipient that another send inserted meanwhile is
    looked up again. The recipients travel as JSON documents (decoded by PostgreSQL), not as
    arrays that psycopg would adapt element by element.

    With ``lock``, every recipient is locked FOR KEY SHARE until commit as it is looked up (or
    is new, so nobody else sees it): none can be erased meanwhile, and the caller may write rows
    for them without looking each up again (``fan_out_in_app(users_locked=True)``). A caller
    that holds the tenant's recipients (``recipients_hold``) has that without ``lock``.

    ``known``: the ids that a lookup of ``recipients`` (``recipients_lookup_sql`` with the same
    ``lock``, in this transaction) found, in their order, None for the unknown; they are not
    looked up again.
    """
    table = EndUser._meta.db_table
    now = timezone.now()
    columns = recipient_columns(recipients)
    given = columns.ids
    with_details = columns.has_details
    with connection.cursor() as cursor:
        found = _user_ids_in_order(cursor, given, lock=lock) if known is None else known
        created: set[int] = set()
        locales: dict[int, tuple[str, str]] | None = None
        ids = cast("list[int]", found)  # unless None is in it: then set below
        if None in found:
            missing = [i for i, user_id in enumerate(found) if user_id is None]
            missing.sort(key=given.__getitem__)
            missing_ids = list(map(given.__getitem__, missing))
            if with_details:
                rows, params = _DETAILS, _details_params(columns.take(missing))
                columns_sql, email, name, locale = _DETAILS_ALIAS, "r.email", "r.name", "r.locale"
            else:  # plain ids, the common case
                rows = "jsonb_array_elements_text(%(rows)s::jsonb)"
                params = {"rows": _json(missing_ids)}
                columns_sql, email, name, locale = "r(external_id)", "NULL", "NULL", "NULL"
            cursor.execute(
                f"""
                INSERT INTO {table} (external_id, email, name, locale, timezone, data,
                                     created_at, updated_at)
                SELECT r.external_id, coalesce({email}, ''), coalesce({name}, ''),
                       coalesce({locale}, ''), '',
                       '{{}}'::jsonb, %(now)s, %(now)s
                FROM {rows} AS {columns_sql}
                ON CONFLICT (external_id) DO NOTHING
                RETURNING external_id, id{", locale, timezone" if with_details else ""}
                """,
                {**params, "now": now},
            )
            if with_details:
                rows_inserted = cursor.fetchall()
                inserted = {row[0]: row[1] for row in rows_inserted}
                locales = {row[1]: (row[2], row[3]) for row in rows_inserted}
            else:
                inserted = dict(cursor.fetchall())
            created = set(inserted.values())
            if len(inserted) < len(missing):  # some inserted meanwhile by another send
                raced = [external_id for external_id in missing_ids if external_id not in inserted]
                inserted.update(_user_ids(cursor, raced, lock=lock))
            ids = [
                inserted[external_id] if user_id is None else user_id
                for external_id, user_id in zip(given, found, strict=True)
            ]
        if with_details and len(created) < len(ids):
            existing = [i for i, user_id in enumerate(ids) if user_id not in created]
            existing.sort(key=given.__getitem__)
            cursor.execute(
                f"""
                UPDATE {table} AS u
                SET email = coalesce(r.email, u.email), name = coalesce(r.name, u.name),
                    locale = coalesce(r.locale, u.locale), updated_at = %(now)s
                FROM {_DETAILS} AS {_DETAILS_ALIAS}
                WHERE u.external_id = r.external_id
                  AND (u.email <> coalesce(r.email, u.email)
                       OR u.name <> coalesce(r.name, u.name)
                       OR u.locale <> coalesce(r.locale, u.locale))
                """,
                {**_details_params(columns.take(existing)), "now": now},
            )
    return Recipients(ids=ids, created=created, locales=locales)


# Recipients with details, from one JSON array per field (``_details_params``), read side by
# side: rows ``r(external_id, email, name, locale)``, null for a detail not given. An array of
# a field no recipient gives is empty (ROWS FROM pads it with nulls). Against one JSON array
# of four per recipient, for 10,000 recipients with locales: half the encoding (3 against
# 6 ms) and no list per recipient in Python, and an insert of ~185 against ~235 ms (plain ids:
# ~165; best of 11 on a loaded 2-core machine).
_DETAILS = """ROWS FROM (
    jsonb_array_elements_text(%(ids)s::jsonb), jsonb_array_elements_text(%(emails)s::jsonb),
    jsonb_array_elements_text(%(names)s::jsonb), jsonb_array_elements_text(%(locales)s::jsonb))"""
_DETAILS_ALIAS = "r(external_id, email, name, locale)"


def _details_params(recipients: RecipientColumns) -> dict[str, str]:
    """``_DETAILS``' parameters for ``recipients``: a field none gives is an empty array."""
    return {
        "ids": _json(recipients.ids),
        "emails": "[]" if recipients.emails is None else _json(recipients.emails),
        "names": "[]" if recipients.names is None else _json(recipients.names),
        "locales": "[]" if recipients.locales is None else _json(recipients.locales),
    }


def _user_ids_in_order(
    cursor: CursorWrapper, external_ids: list[str], *, lock: bool
) -> list[int | None]:
    """The id of each user of ``external_ids``, in that order (None: no such user). The ids
    come as two arrays (positions and ids): 10,000 rows of (external id, id) cost 5 ms more to
    fetch and match up in Python."""
    cursor.execute(
        f"""
        SELECT array_agg(found.i), array_agg(found.id)
        FROM ({recipients_lookup_sql(lock=lock)}) AS found
        """,
        recipients_lookup_params(external_ids),
    )
    positions, found = cursor.fetchone()
    return ids_in_order(len(external_ids), positions, found)


def ids_in_order(
    count: int, positions: list[int] | None, found: list[int] | None
) -> list[int | None]:
    """The ids of ``count`` recipients in their order (None: not found), from a lookup's
    positions and ids (``recipients_lookup_sql``, aggregated as two arrays)."""
    ids: list[int | None] = [None] * count
    for position, user_id in zip(positions or (), found or (), strict=True):
        ids[position] = user_id
    return ids


def _user_ids(cursor: CursorWrapper, external_ids: list[str], *, lock: bool) -> dict[str, int]:
    """The ids of the users among ``external_ids`` (distinct), by external id."""
    cursor.execute(
        f"SELECT found.external_id, found.id FROM ({recipients_lookup_sql(lock=lock)}) AS found",
        recipients_lookup_params(external_ids),
    )
    return dict(cursor.fetchall())


def recipients_lookup_sql(*, lock: bool) -> str:
    """The users named by a JSON array of external ids, with their positions in it: rows
    ``(i, id, external_id, locale, timezone)``, locked FOR KEY SHARE with ``lock``; named
    parameters from ``recipients_lookup_params``. For a statement of the caller's own (as a
    subquery or CTE)."""
    return _LOOKUP.format(lock="FOR KEY SHARE" if lock else "")


def recipients_lookup_params(external_ids: list[str]) -> dict[str, Any]:
    return {"lookup_last": len(external_ids) - 1, "lookup_ids": _json(external_ids)}


def _json(values: list[Any]) -> str:
    """A JSON array of recipients' fields, as PostgreSQL decodes it: orjson writes 10,000 ids in
    0.05 ms, the standard library's ``json`` in 0.7."""
    return orjson.dumps(values).decode()


# The users named by a JSON array of external ids (params: its last index, the array), with
# their positions in it: one probe of the external id's index per recipient, so that a send
# costs the same in a tenant of 10,000 users as in one of 10,000,000. Elements are read by
# position over ``generate_series``, whose row count the planner knows (it guesses 100 for a
# JSON array). The probe is a LATERAL subquery with LIMIT 1 (external ids are unique), which
# the planner cannot turn into a hash join: with its default costs it hashes the whole table
# for a large send up to some 300,000 users, which on cached data costs several times the
# probes (10,000 recipients in 90,000 users: 26 against 11 ms for new ones, 31 against 20 ms
# for existing ones, and growing with the table). The price: a send that lists nearly every
# user of its tenant probes where a hash would do (100,000 of 100,000: some 7% slower, about
# 70 ms); a send to everyone names a topic, whose fan-out joins the subscriptions instead.
_LOOKUP = f"""
    SELECT i, u.id, u.external_id, u.locale, u.timezone
    FROM generate_series(0, %(lookup_last)s) AS i
    CROSS JOIN LATERAL (
        SELECT id, external_id, locale, timezone FROM {EndUser._meta.db_table}
        WHERE external_id = %(lookup_ids)s::jsonb ->> i LIMIT 1 {{lock}}) AS u
"""
