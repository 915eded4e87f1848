"""Rules that several layers apply, each written once: what "unread" means and what a type key
may look like. Models, selectors, SQL fast paths, URL converters and forms all read them here.

No imports from this app: models import this module.
"""

from __future__ import annotations

import re

from django.db.models import Q

# --- Unread ---------------------------------------------------------------------------------------
# A notification is unread while it is neither read nor archived. The ORM form and the SQL form
# say the same thing (a test runs both over the same rows); the partial index notif_inbox_unread
# is built on the ORM form, so queries using either stay on it.

UNREAD = Q(read_at__isnull=True, archived_at__isnull=True)


def unread_sql(alias: str = "") -> str:
    """``UNREAD`` as a SQL condition over the notification table, aliased ``alias`` if given."""
    prefix = f"{alias}." if alias else ""
    return f"{prefix}read_at IS NULL AND {prefix}archived_at IS NULL"


# --- Type keys ------------------------------------------------------------------------------------

# What a key looks like, unanchored: for URL converters, which anchor it themselves.
TYPE_KEY_REGEX = r"[a-z0-9][a-z0-9_.-]{0,99}"
# The same, anchored: for validators and the OpenAPI schema.
TYPE_KEY_PATTERN = rf"^{TYPE_KEY_REGEX}$"
TYPE_KEY_MESSAGE = (
    "Use 1 to 100 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit."
)
_TYPE_KEY = re.compile(TYPE_KEY_REGEX)


def type_key_valid(key: str) -> bool:
    """Whether ``key`` can name a notification type."""
    return _TYPE_KEY.fullmatch(key) is not None
