"""Log lines: one JSON object per line on stdout, naming the request, tenant and task they are for.

``LOG_FORMAT`` picks ``json`` (the default without ``DEBUG``) or ``plain`` (the default with it,
for a terminal). Every process logs through the root logger's one handler on stdout: Django's
``LOGGING`` (settings) in web processes, in ``manage.py`` and, through ``herald.celery_logs``, in
Celery's worker and beat; ``uvicorn_logging.json`` in uvicorn's own supervisor, which never loads
Django. A JSON line holds ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the fields
bound here (``request_id``, ``tenant``, ``task_id``, ``task``) when there are any, ``exception``
(the traceback, as one string) when there is one, and whatever the call passed in ``extra=``
(``repr`` of what JSON cannot hold).

What a line is for comes from ``bound``: one context variable holding the fields of whatever the
code is running for. A context variable, not a thread-local: a web process runs many requests'
sync code on a few long-lived threads (``herald.handlers``) and every WebSocket connection on the
one event loop thread, and each of those runs in a context of its own. ``bound`` resets what it
set on the way out all the same, so a field never outlives its request, connection or task on a
server whose threads keep one context (a WSGI server's, a Celery worker's).

The JSON formatter is a few lines over the standard library's ``json`` rather than a dependency
(python-json-logger): the fields are fixed, the context is this module's, and what it must
guarantee (one line whatever a message or traceback holds, never an exception for an odd
``extra``) is easier to see here than to configure there.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import re
from collections.abc import Coroutine, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, TypeVar

from django.core.exceptions import ImproperlyConfigured

from herald.env import env_bool, env_str

T = TypeVar("T")
FORMATS = ("json", "plain")
PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"

_EMPTY: Mapping[str, str] = MappingProxyType({})
_fields: ContextVar[Mapping[str, str]] = ContextVar("herald_log_fields", default=_EMPTY)

# What every LogRecord has: anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(
    {*logging.LogRecord("", 0, "", 0, "", (), None).__dict__, "message", "asctime", "taskName"}
)
# Extras that are left out: Django's HttpRequest (its repr holds the query string, which may
# hold a secret) and uvicorn's copy of the message with terminal colour codes.
_LEFT_OUT = frozenset({"request", "color_message"})
# Celery's ``data``: its message's fields again, with the task's arguments (which may hold what a
# log should not) and the traceback (already in ``exception``).
_LEFT_OUT_OF_CELERY = frozenset({"data"})


def log_format() -> str:
    """``LOG_FORMAT``, by default ``json`` (``plain`` with ``DEBUG``). Raises
    ImproperlyConfigured for anything else."""
    value = env_str("LOG_FORMAT", "plain" if env_bool("DEBUG", default=False) else "json")
    value = value.strip().lower()
    if value not in FORMATS:
        raise ImproperlyConfigured(f"LOG_FORMAT={value!r} is not one of {', '.join(FORMATS)}.")
    return value


# --- What a line is for ------------------------------------------------------------------------


def current() -> Mapping[str, str]:
    """The fields bound where the caller runs (``request_id``, ``tenant``, ...)."""
    return _fields.get()


def bind(**fields: str | None) -> Token[Mapping[str, str]]:
    """Add fields to every later line of this context (None removes one); give the token to
    ``unbind`` to go back to what was bound before. ``bound`` does both."""
    merged = {**_fields.get(), **fields}
    return _fields.set(MappingProxyType({k: v for k, v in merged.items() if v is not None}))


def unbind(token: Token[Mapping[str, str]]) -> None:
    """Back to the fields bound before ``bind`` gave ``token`` (and so before anything bound
    after it, in this context)."""
    _fields.reset(token)


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """The lines logged inside carry these fields; none of them outlives the block."""
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def start_unbound(coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
    """``coroutine`` as a task of the running loop in a context of its own, for work that serves
    every connection of the process (the real-time dispatcher, the GC freezer...). A task
    copies the context of whoever creates it: started from a connection's, it would name that
    connection in its log lines, and report under its Sentry scope, for its whole life."""
    return asyncio.get_running_loop().create_task(coroutine, context=contextvars.Context())


# --- Formatters ----------------------------------------------------------------------------------


# A credential in a query string: the WebSocket's ``?token=`` (uvicorn logs each handshake's path
# with its query).
_QUERY_SECRET = re.compile(r"([?&](?:token|access_token)=)[^&\s\"']+")


def redact(text: str) -> str:
    """``text`` with the values of secret query parameters replaced by ``[redacted]``."""
    if "=" not in text:
        return text
    return _QUERY_SECRET.sub(r"\1[redacted]", text)


def _utc(created: float) -> str:
    return datetime.fromtimestamp(created, tz=UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (see the module docstring for its fields)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_fields.get(),
        }
        left_out = _LEFT_OUT
        if record.name.startswith("celery"):
            left_out = left_out | _LEFT_OUT_OF_CELERY
        extra = {
            key: value
            for key, value in record.__dict__.items()
            if key not in _RECORD_ATTRIBUTES and key not in left_out and not key.startswith("_")
        }
        line.update(extra)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        try:
            # ASCII only: a terminal or collector with another encoding still reads one line.
            return json.dumps(line, default=repr)
        except (TypeError, ValueError):  # keys JSON cannot hold, a value that contains itself
            line.update({key: _jsonable(value) for key, value in extra.items()})
            return json.dumps(line, default=repr)


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)
    return value


class PlainFormatter(logging.Formatter):
    """``PLAIN_FORMAT``, with the bound fields after the message (``request_id=... tenant=...``)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = redact(super().formatMessage(record))
        fields = _fields.get()
        if fields:
            text += " " + " ".join(f"{key}={value}" for key, value in fields.items())
        return text


def formatter(kind: str | None = None) -> logging.Formatter:
    """The formatter of ``kind`` (default: ``log_format()``), for ``logging.config``'s ``()``."""
    kind = kind or log_format()
    if kind == "plain":
        return PlainFormatter(PLAIN_FORMAT)
    return JsonFormatter()
