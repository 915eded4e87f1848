"""Email templates per notification type, rendered with the notification's data.

A type's ``email_subject``, ``email_text`` and ``email_html`` are Django templates (no loaders:
``include`` and ``extends`` cannot reach files). Blank ones fall back to the defaults below. The
context: ``title``, ``message``, ``url``, ``data`` (the send's), ``type``, ``user`` (``id``,
``name``, ``email``), ``tenant`` (``name``) and ``unsubscribe_url``. HTML is autoescaped; subject
and text are not.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, Template, TemplateSyntaxError

DEFAULT_SUBJECT = "{% if title %}{{ title }}{% else %}{{ message|truncatechars:100 }}{% endif %}"
DEFAULT_TEXT = (
    "{{ message }}\n{% if url %}\n{{ url }}\n{% endif %}"
    "\n--\n{{ tenant.name }}. Stop these emails: {{ unsubscribe_url }}\n"
)
DEFAULT_HTML = (
    "<!doctype html><html><body>"
    "{% if title %}<h1>{{ title }}</h1>{% endif %}<p>{{ message|linebreaksbr }}</p>"
    '{% if url %}<p><a href="{{ url }}">{{ url }}</a></p>{% endif %}'
    '<hr><p style="font-size:small">{{ tenant.name }}. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> from these emails.</p>'
    "</body></html>"
)

_TEXT_ENGINE = Engine(autoescape=False)
_HTML_ENGINE = Engine(autoescape=True)


class TemplateError(ValueError):
    """A type's template does not compile or render; the message says where."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@functools.lru_cache(maxsize=512)
def _compiled(source: str, *, html: bool) -> Template:
    """Compiling costs more than rendering; a batch renders the same few templates again and
    again. Keyed by the source itself, so an edited template is simply a new entry."""
    return (_HTML_ENGINE if html else _TEXT_ENGINE).from_string(source)


def compile_errors(source: str) -> str | None:
    """Why ``source`` does not compile as an email template; None when it does."""
    try:
        _HTML_ENGINE.from_string(source)
    except TemplateSyntaxError as exc:
        return f"Template syntax error: {exc}"
    return None


def render_email(*, subject: str, text: str, html: str, context: dict[str, Any]) -> RenderedEmail:
    """Render a type's templates (blank ones take the defaults). Raises TemplateError."""
    try:
        plain = Context(context, autoescape=False)
        rendered_subject = _compiled(subject or DEFAULT_SUBJECT, html=False).render(plain)
        rendered_text = _compiled(text or DEFAULT_TEXT, html=False).render(plain)
        rendered_html = _compiled(html or DEFAULT_HTML, html=True).render(
            Context(context, autoescape=True)
        )
    except (TemplateSyntaxError, ValueError, TypeError, KeyError) as exc:
        raise TemplateError(f"{type(exc).__name__}: {exc}") from exc
    # A subject is one line: headers cannot carry newlines.
    one_line = " ".join(rendered_subject.split())[:300]
    return RenderedEmail(subject=one_line, text=rendered_text, html=rendered_html)
