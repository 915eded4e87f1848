"""Email templates per notification type, rendered with the notification's data.

A type's ``email_subject``, ``email_text`` and ``email_html`` are Liquid templates, compiled and
rendered by ``notifications.templating`` (sandboxed, within the ``TEMPLATE_*`` limits; the three
parts of one email share one render-time limit). Blank ones fall back to the defaults below. The
context: ``title``, ``message``, ``url``, ``data`` (the send's), ``type``, ``user`` (``id``,
``name``, ``email``, ``locale``), ``tenant`` (``name``) and ``unsubscribe_url``. HTML is
autoescaped; subject and text are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from notifications.templating import TemplateError, plain_context, render, render_deadline

__all__ = ["DEFAULT_HTML", "DEFAULT_SUBJECT", "DEFAULT_TEXT", "RenderedEmail", "TemplateError"]

DEFAULT_SUBJECT = "{% if title %}{{ title }}{% else %}{{ message | truncate: 100, '…' }}{% endif %}"
DEFAULT_TEXT = (
    "{{ message }}\n{% if url %}\n{{ url }}\n{% endif %}"
    "\n--\n{{ tenant.name }}. Stop these emails: {{ unsubscribe_url }}\n"
)
DEFAULT_HTML = (
    "<!doctype html><html><body>"
    "{% if title %}<h1>{{ title }}</h1>{% endif %}<p>{{ message | newline_to_br }}</p>"
    '{% if url %}<p><a href="{{ url }}">{{ url }}</a></p>{% endif %}'
    '<hr><p style="font-size:small">{{ tenant.name }}. '
    '<a href="{{ unsubscribe_url }}">Unsubscribe</a> from these emails.</p>'
    "</body></html>"
)


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(*, subject: str, text: str, html: str, context: dict[str, Any]) -> RenderedEmail:
    """Render a type's templates (blank ones take the defaults) within one render-time limit.
    Raises TemplateError naming the part that failed."""
    plain = plain_context(context)
    deadline = render_deadline()
    parts = {}
    for name, source, is_html in (
        ("email_subject", subject or DEFAULT_SUBJECT, False),
        ("email_text", text or DEFAULT_TEXT, False),
        ("email_html", html or DEFAULT_HTML, True),
    ):
        try:
            parts[name] = render(source, plain, html=is_html, deadline=deadline)
        except TemplateError as exc:
            raise type(exc)(f"{name}: {exc}") from exc
    # A subject is one line: headers cannot carry newlines.
    one_line = " ".join(parts["email_subject"].split())[:300]
    return RenderedEmail(subject=one_line, text=parts["email_text"], html=parts["email_html"])
