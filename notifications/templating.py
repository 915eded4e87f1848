"""Tenant-authored templates: Liquid (python-liquid), sandboxed and bounded.

Every template a tenant writes (a type's email subject, text and HTML; later the per-locale
texts and other channels) is compiled and rendered here, in the worker and in the dashboard's
preview alike, so one set of rules holds everywhere:

- **Sandbox.** No loader: ``include`` and ``render`` are refused when a template is parsed, as
  are unknown tags (``debug``) and, on save, unknown filters. Liquid looks values up by key or
  index only, never by attribute, and ``render`` hands it plain data (``plain_context``):
  dicts, lists, strings, numbers, booleans and dates. Python objects, files and settings are
  out of reach. Liquid's ``now`` and ``today`` globals are removed too: a template sees only
  the context it is given.
- **Limits** (settings ``TEMPLATE_*``, see ``Limits``): loop iterations over the whole render
  (Liquid's own limit multiplies nested loops only, so sibling loops could add up without
  end), output size, context depth, the size of what ``assign`` and ``capture`` keep, and a
  render-time deadline. The deadline is checked by the render context as each node renders and
  before each filter, on whatever thread renders it: no signals, no watchdog thread. A single
  filter call runs in C and cannot be stopped midway, so no filter may return a value larger
  than the output limit, and ``replace`` and ``join``, which can multiply a value by itself in
  one call, are refused before they run when their result would be.
- **Blank is nil**: an empty string, list or object in the context is nil (``plain_context``).

Callers get ``TemplateError`` with a one-line reason, e.g. "loop iteration limit reached (line
3, column 4)".
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import functools
import threading
import time
import zoneinfo
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import babel
import liquid
from babel import dates as babel_dates
from babel import numbers as babel_numbers
from django.conf import settings
from liquid import BoundTemplate, Environment, RenderContext
from liquid.exceptions import (
    LiquidError,
    LiquidSyntaxError,
    LoopIterationLimitError,
    ResourceLimitError,
)
from liquid.filter import with_context
from liquid.output import LimitedStringIO
from liquid.tag import Tag
from liquid.utils import ReadOnlyChainMap

# The render-time check below relies on ``liquid.ast.Node.render`` reading
# ``context.disabled_tags`` before it renders each node (python-liquid 2.x). A test renders a
# template made only of literal nodes against the deadline, and fails loudly should an upgrade
# stop reading it there.
if not liquid.__version__.startswith("2."):  # pragma: no cover - an upgrade must look here
    raise ImportError(f"python-liquid 2.x expected, not {liquid.__version__}")


class TemplateError(ValueError):
    """A template does not parse, or failed while rendering; the message says why and where."""


class RenderTimeout(TemplateError):
    """The render ran past its time limit: costly to try again with the same template."""


class RenderTimeLimitError(ResourceLimitError):
    """The render ran past its deadline."""


class ValueSizeLimitError(ResourceLimitError):
    """A filter made (or was about to make) a value larger than a template may output."""


@dataclass(frozen=True)
class Limits:
    loop_iterations: int  # loop turns in one render, nested and sibling loops together
    output_bytes: int  # what one template writes (UTF-8), captures included
    context_depth: int  # nested scopes (loops inside loops)
    locals_bytes: int  # what ``assign`` and ``capture`` hold, by ``sys.getsizeof``
    render_seconds: float  # wall time of one render call (an email's three parts together)


def limits() -> Limits:
    return Limits(
        loop_iterations=settings.TEMPLATE_LOOP_LIMIT,
        output_bytes=settings.TEMPLATE_OUTPUT_LIMIT_BYTES,
        context_depth=settings.TEMPLATE_CONTEXT_DEPTH_LIMIT,
        locals_bytes=settings.TEMPLATE_LOCALS_LIMIT_BYTES,
        render_seconds=settings.TEMPLATE_RENDER_TIMEOUT_SECONDS,
    )


class _Budget:
    """Shared by a render's contexts: when it must end, the loop turns it has left, and the
    recipient's locale and time zone (read by the ``*_local`` filters)."""

    __slots__ = ("deadline", "locale", "loop_turns_left", "timezone")

    def __init__(self, deadline: float, loop_turns: int, locale: str = "", tz: str = "") -> None:
        self.deadline = deadline
        self.loop_turns_left = loop_turns
        self.locale = locale
        self.timezone = tz


class _BoundedContext(RenderContext):
    """A render context that counts loop turns over the whole render and keeps the deadline.

    ``disabled_tags`` is read by every node before it renders (``liquid.ast.Node.render``):
    that read is where the deadline is checked, so even a loop whose body calls nothing else
    stops on time."""

    __slots__ = ("_budget", "_disabled")

    def __init__(self, template: BoundTemplate, *args: Any, **kwargs: Any) -> None:
        parent = kwargs.get("parent_context")
        self._budget: _Budget | None = getattr(parent, "_budget", None)
        super().__init__(template, *args, **kwargs)
        # Only the given context: no ``now`` and ``today`` builtins.
        self.scope = ReadOnlyChainMap(self.locals, self.globals, self.counters)

    def check_deadline(self) -> None:
        budget = self._budget
        if budget is not None and time.monotonic() > budget.deadline:
            raise RenderTimeLimitError("render time limit reached", token=None)

    # A property over the base class's plain attribute, so that every read checks the deadline.
    @property
    def disabled_tags(self) -> list[str]:
        self.check_deadline()
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value

    def filter(self, name: str, token: Any) -> Callable[..., object]:
        """Every filter's result is bounded by the output limit: a chain such as ``escape |
        escape | ...`` grows a value several times per step, in C, between two nodes."""
        self.check_deadline()
        func = super().filter(name, token)
        limit = self.env.output_stream_limit

        def bounded(left: object, *args: object, **kwargs: object) -> object:
            return _bounded(func(left, *args, **kwargs), limit)

        return bounded

    def raise_for_loop_limit(self, length: int = 1) -> None:
        budget = self._budget
        if budget is not None:
            budget.loop_turns_left -= length
            if budget.loop_turns_left < 0:
                raise LoopIterationLimitError("loop iteration limit reached", token=None)
        super().raise_for_loop_limit(length)


class _BoundedTemplate(BoundTemplate):
    context_class = _BoundedContext

    def make_partial_namespace(
        self, partial: bool, render_args: Mapping[str, object]
    ) -> Mapping[str, object]:
        return dict(render_args)  # without Liquid's ``partial`` flag: only the given context


def _bounded(value: object, limit: int | None) -> object:
    if limit is None:  # never: _environment sets every limit
        return value
    if isinstance(value, str | list | tuple) and len(value) > limit:
        raise ValueSizeLimitError("value size limit reached", token=None)
    if isinstance(value, int) and value.bit_length() > limit:
        raise ValueSizeLimitError("value size limit reached", token=None)
    return value


def _size_checked(original: Callable[..., object], limit: int, size: Callable[..., int]) -> Any:
    """``original`` (a filter), refused before it runs when ``size`` says its result would be
    larger than ``limit``: one call of ``replace`` or ``join`` can multiply a value's size."""

    @functools.wraps(original)  # keeps the markers python-liquid reads (with_environment...)
    def checked(*args: object, **kwargs: object) -> object:
        if size(*args) > limit:
            raise ValueSizeLimitError("value size limit reached", token=None)
        return original(*args, **kwargs)

    return checked


def _replaced_size(value: object, old: object = "", new: object = "", *_: object) -> int:
    text, old, new = str(value), str(old), str(new)
    count = text.count(old) if old else len(text) + 1
    return len(text) + count * max(len(new) - len(old), 0)


def _joined_size(value: object, separator: object = " ", *_: object) -> int:
    if not isinstance(value, list | tuple):
        return 0
    return sum(len(str(item)) for item in value) + len(str(separator)) * max(len(value) - 1, 0)


class _Refused(Tag):
    """A tag that loads other templates: there are none to load."""

    block = False

    def parse(self, stream: Any) -> Any:
        raise LiquidSyntaxError(
            f"'{self.name}' is not available: templates cannot include or render other templates",
            token=stream.current,
        )


class _RefusedInclude(_Refused):
    name = "include"


class _RefusedRender(_Refused):
    name = "render"


def _recipient(context: RenderContext) -> tuple[babel.Locale, datetime.tzinfo]:
    """The Babel locale and time zone of the recipient a render is for: 'en' and UTC when
    unknown or unset."""
    budget: _Budget | None = getattr(context, "_budget", None)
    return _babel_locale(budget.locale if budget else ""), _zone(budget.timezone if budget else "")


@functools.lru_cache(maxsize=256)
def _babel_locale(tag: str) -> babel.Locale:
    try:
        return babel.Locale.parse(tag.replace("-", "_")) if tag else babel.Locale("en")
    except (ValueError, babel.UnknownLocaleError):
        language = tag.split("-")[0]
        try:
            return babel.Locale.parse(language)
        except (ValueError, babel.UnknownLocaleError):
            return babel.Locale("en")


@functools.lru_cache(maxsize=256)
def _zone(name: str) -> datetime.tzinfo:
    try:
        return zoneinfo.ZoneInfo(name) if name else datetime.UTC
    except (ValueError, zoneinfo.ZoneInfoNotFoundError):
        return datetime.UTC


_DATE_FORMATS = frozenset({"short", "medium", "long", "full"})
# A Babel pattern is short and made of letters, spaces and punctuation: a pattern of repeated
# letters cannot make the output larger than its own length times a small factor.
_PATTERN_MAX = 64


def _as_datetime(value: object) -> datetime.datetime | datetime.date | None:
    if isinstance(value, datetime.datetime | datetime.date):
        return value
    if isinstance(value, str) and len(value) <= 64:
        text = value.strip()
        try:
            if len(text) == 10:  # a date alone: no time to shift into a time zone
                return datetime.date.fromisoformat(text)
            return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


@with_context
def _date_local(value: object, style: object = "medium", *, context: RenderContext) -> object:
    """``{{ data.due | date_local: "medium" }}``: a date or date-time (ISO 8601 string or
    date) in the recipient's locale and time zone; short, medium, long, full or a Babel
    pattern. A value that is not a date is output as it is."""
    moment = _as_datetime(value)
    if moment is None:
        return value
    pattern = str(style)[:_PATTERN_MAX] or "medium"
    locale, zone = _recipient(context)
    if isinstance(moment, datetime.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.UTC)
        return babel_dates.format_datetime(moment, pattern, tzinfo=zone, locale=locale)
    return babel_dates.format_date(moment, pattern, locale=locale)


def _as_number(value: object) -> decimal.Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        value = str(value)
    if isinstance(value, str) and len(value) <= 64:
        try:
            number = decimal.Decimal(value.strip())
        except decimal.InvalidOperation:
            return None
        # Bounded: no exponent can blow a number up into a million digits.
        return number if number.is_finite() and abs(number.adjusted()) <= 40 else None
    return None


@with_context
def _number_local(value: object, *, context: RenderContext) -> object:
    """``{{ data.count | number_local }}``: a decimal number in the recipient's locale."""
    number = _as_number(value)
    if number is None:
        return value
    locale = _recipient(context)[0]
    return babel_numbers.format_decimal(number, locale=locale)


@with_context
def _currency_local(value: object, currency: object = "", *, context: RenderContext) -> object:
    """``{{ data.amount | currency_local: "EUR" }}``: an amount in an ISO 4217 currency, in
    the recipient's locale."""
    number = _as_number(value)
    code = str(currency).upper()
    if number is None or len(code) != 3 or not code.isalpha():
        return value
    locale = _recipient(context)[0]
    return babel_numbers.format_currency(number, code, locale=locale)


# Locale-aware formatting, available to every template.
LOCAL_FILTERS: dict[str, Callable[..., object]] = {
    "date_local": _date_local,
    "number_local": _number_local,
    "currency_local": _currency_local,
}


@functools.lru_cache(maxsize=4)
def _environment(*, html: bool, bounds: Limits) -> Environment:
    env = Environment(autoescape=html, strict_filters=True)
    env.template_class = _BoundedTemplate
    # Liquid's own limits, as instance attributes over its class defaults.
    # (Liquid declares them as class variables; it reads them through the instance.)
    env.loop_iteration_limit = bounds.loop_iterations  # type: ignore[misc]  # see above
    env.output_stream_limit = bounds.output_bytes  # type: ignore[misc]  # see above
    env.context_depth_limit = bounds.context_depth  # type: ignore[misc]  # see above
    env.local_namespace_limit = bounds.locals_bytes  # type: ignore[misc]  # see above
    env.add_tag(_RefusedInclude)
    env.add_tag(_RefusedRender)
    for name, size in (("replace", _replaced_size), ("join", _joined_size)):
        env.add_filter(name, _size_checked(env.filters[name], bounds.output_bytes, size))
    for name, local_filter in LOCAL_FILTERS.items():
        env.add_filter(name, local_filter)
    return env


def _parse_key(bounds: Limits) -> Limits:
    """The limits a compiled template is bound to: the render time is not one of them."""
    return dataclasses.replace(bounds, render_seconds=0)


def _where(exc: LiquidError) -> str:
    try:
        context = exc.context()
    except ValueError:  # a position python-liquid cannot place
        context = None
    line = f" (line {context[0]}, column {context[1] + 1})" if context else ""
    return f"{exc.message}{line}"


class _CompiledCache:
    """Compiled templates, least recently used first, within a budget of source characters.

    Parsing costs more than rendering, and a batch renders the same few templates again and
    again. Keyed by the source itself: an edited template is simply a new entry. A budget of
    characters rather than entries, because the live preview compiles whatever an admin types
    (up to 200,000 characters a template) in the web process."""

    def __init__(self, budget: int) -> None:
        self._entries: OrderedDict[tuple[str, bool, Limits], BoundTemplate] = OrderedDict()
        self._size = 0
        self._budget = budget
        self._lock = threading.Lock()

    def get(self, source: str, html: bool, bounds: Limits) -> BoundTemplate:
        key = (source, html, bounds)
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return self._entries[key]
        try:
            template = _environment(html=html, bounds=bounds).from_string(source)
        except LiquidError as exc:
            raise TemplateError(f"Template syntax error: {_where(exc)}") from exc
        with self._lock:
            if key not in self._entries:
                self._entries[key] = template
                self._size += len(source)
            while self._size > self._budget and len(self._entries) > 1:
                (old, *_), _template = self._entries.popitem(last=False)
                self._size -= len(old)
        return template


# Compiled, a template takes up to ~40 bytes per source character: this is ~40 MiB at most.
_cache = _CompiledCache(budget=1_000_000)


def _compiled(source: str, html: bool, bounds: Limits) -> BoundTemplate:
    return _cache.get(source, html, bounds)


def compile_errors(source: str, *, html: bool = True) -> str | None:
    """Why ``source`` cannot be saved as a template (it does not parse, or names a filter that
    does not exist); None when it can."""
    try:
        template = _compiled(source, html, _parse_key(limits()))
    except TemplateError as exc:
        return str(exc)
    env = template.env
    unknown = sorted(set(template.filter_names()) - set(env.filters))
    if unknown:
        return f"Unknown filter: {', '.join(unknown)}"
    return None


@dataclass(frozen=True)
class TemplateNames:
    """What a template reads, from python-liquid's analysis of the parsed template: the
    variables it takes from its context (``user``, ``data``, ...; not those it assigns or loops
    over) and the filters it applies. Words in text or in string literals are neither."""

    globals: frozenset[str]
    filters: frozenset[str]


@functools.lru_cache(maxsize=1024)
def template_names(source: str) -> TemplateNames:
    """``TemplateNames`` of ``source`` (compiled once, as ``render`` compiles it). A template
    that does not parse reads nothing: it never renders (its callers keep their own text)."""
    try:
        template = _compiled(source, False, _parse_key(limits()))
    except TemplateError:
        return TemplateNames(frozenset(), frozenset())
    # No partials: ``include`` and ``render`` are refused at parse time (no loader).
    analysis = template.analyze(include_partials=False)
    return TemplateNames(frozenset(analysis.globals), frozenset(analysis.filters))


def render_deadline() -> float:
    """The monotonic time by which a render starting now must end."""
    return time.monotonic() + limits().render_seconds


def render(
    source: str,
    context: Mapping[str, Any],
    *,
    html: bool,
    deadline: float | None = None,
    locale: str = "",
    timezone: str = "",
) -> str:
    """Render ``source`` with ``context`` (pass it through ``plain_context`` first). HTML
    templates escape what they output, unless marked ``| safe``. ``deadline`` (monotonic) lets
    several renders share one time limit; by default this render has a limit of its own.
    ``locale`` and ``timezone`` are the recipient's (``EndUser.locale``, ``.timezone``), for
    the ``date_local``, ``number_local`` and ``currency_local`` filters ('' -> en, UTC).
    Raises TemplateError."""
    bounds = limits()
    template = _compiled(source, html, _parse_key(bounds))
    budget = _Budget(
        deadline if deadline is not None else time.monotonic() + bounds.render_seconds,
        bounds.loop_iterations,
        locale,
        timezone,
    )
    render_context = _BoundedContext(template, globals=template.make_globals(dict(context)))
    render_context._budget = budget
    buffer = LimitedStringIO(limit=bounds.output_bytes)
    try:
        template.render_with_context(render_context, buffer)
    except RenderTimeLimitError as exc:
        raise RenderTimeout(_where(exc)) from exc
    except LiquidError as exc:
        raise TemplateError(_where(exc)) from exc
    except (ArithmeticError, LookupError, TypeError, ValueError, RecursionError) as exc:
        # A filter given data it cannot handle; the template is at fault, not the worker.
        raise TemplateError(f"{type(exc).__name__}: {exc}") from exc
    return buffer.getvalue()


_SCALARS = (str, int, float, bool, type(None), datetime.date)


def plain_context(value: Any, *, depth: int = 0) -> Any:
    """``value`` as plain data a template may see: dicts (string keys), lists, strings, numbers,
    booleans, nil and dates. Anything else becomes its string; nesting past 32 levels is cut.

    A blank value (an empty string, list or object) is nil, as if absent. Liquid holds ``""``
    and ``[]`` true, so ``{% if url %}`` would otherwise be true for a send without a link, and
    the templates converted from Django syntax, where blank is false, would change meaning."""
    if isinstance(value, str | list | tuple | Mapping) and not value:
        return None
    if isinstance(value, _SCALARS):
        return value
    if depth >= 32:
        return None
    if isinstance(value, Mapping):
        return {str(k): plain_context(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_context(v, depth=depth + 1) for v in value]
    return str(value)
