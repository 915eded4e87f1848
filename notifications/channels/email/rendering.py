"""Email templates per notification type, rendered with the notification's data.

A type's ``email_subject``, ``email_text`` and ``email_html`` are Liquid templates, compiled and
rendered by ``notifications.templating`` (sandboxed, within the ``TEMPLATE_*`` limits; the three
parts of one email share one render-time limit). Blank ones fall back to Herald's defaults below,
whose own words (the footer) are translated into the recipient's language. The context:
``title``, ``message`` (the recipient's, ``texts``), ``url``, ``data`` (the send's), ``type``,
``user`` (``id``, ``name``, ``email``, ``locale``), ``tenant`` (``name``) and ``unsubscribe_url``.
HTML is autoescaped; subject and text are not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.utils.html import escape
from django.utils.translation import gettext

from notifications.templating import TemplateError, plain_context, render, render_deadline

__all__ = ["DEFAULT_SUBJECT", "RenderedEmail", "TemplateError", "default_templates", "herald_text"]

DEFAULT_SUBJECT = "{% if title %}{{ title }}{% else %}{{ message | truncate: 100, '…' }}{% endif %}"
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def herald_text(message: str, *, html: bool, **values: str) -> str:
    """A translated sentence of Herald's as Liquid source: its words literal (escaped for
    HTML, kept out of Liquid's reach), each ``%(name)s`` replaced by ``values[name]`` (Liquid
    or markup of Herald's own)."""
    parts = _PLACEHOLDER.split(message)
    out = []
    for index, part in enumerate(parts):
        if index % 2:
            out.append(values[part])
            continue
        literal = escape(part) if html else part
        out.append("{% raw %}" + literal + "{% endraw %}" if "{" in literal else literal)
    return "".join(out)


def html_open(lang: str, direction: str) -> str:
    """The opening of Herald's HTML layouts, in the email's language (``lang`` a normalised
    tag, which holds only letters, digits and hyphens)."""
    dir_attribute = ' dir="rtl"' if direction == "rtl" else ""
    return f'<!doctype html><html lang="{escape(lang)}"{dir_attribute}><body>'


def html_footer() -> str:
    return herald_text(
        gettext("%(tenant)s. %(link)sUnsubscribe%(end)s from these emails."),
        html=True,
        tenant="{{ tenant.name }}",
        link='<a href="{{ unsubscribe_url }}">',
        end="</a>",
    )


def text_footer() -> str:
    return herald_text(
        gettext("%(tenant)s. Stop these emails: %(link)s"),
        html=False,
        tenant="{{ tenant.name }}",
        link="{{ unsubscribe_url }}",
    )


def default_templates(*, lang: str, direction: str) -> tuple[str, str, str]:
    """Herald's subject, text and HTML for a type without templates of its own, in the active
    language (``translation.override``), the HTML marked as ``lang`` written in ``direction``."""
    text = "{{ message }}\n{% if url %}\n{{ url }}\n{% endif %}\n--\n" + text_footer() + "\n"
    html = (
        html_open(lang, direction)
        + "{% if title %}<h1>{{ title }}</h1>{% endif %}<p>{{ message | newline_to_br }}</p>"
        + '{% if url %}<p><a href="{{ url }}">{{ url }}</a></p>{% endif %}'
        + '<hr><p style="font-size:small">'
        + html_footer()
        + "</p></body></html>"
    )
    return DEFAULT_SUBJECT, text, html


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(
    *,
    subject: str,
    text: str,
    html: str,
    context: dict[str, Any],
    defaults: tuple[str, str, str] | None = None,
    locale: str = "",
    timezone: str = "",
) -> RenderedEmail:
    """Render a type's templates (blank ones take ``defaults``, by default Herald's English
    ones) within one render-time limit, with the recipient's ``locale`` and ``timezone`` for
    the ``*_local`` filters. Raises TemplateError naming the part that failed."""
    if defaults is None:
        defaults = default_templates(lang="en", direction="ltr")
    plain = plain_context(context)
    deadline = render_deadline()
    parts = {}
    for name, source, is_html in (
        ("email_subject", subject or defaults[0], False),
        ("email_text", text or defaults[1], False),
        ("email_html", html or defaults[2], True),
    ):
        try:
            parts[name] = render(
                source, plain, html=is_html, deadline=deadline, locale=locale, timezone=timezone
            )
        except TemplateError as exc:
            raise type(exc)(f"{name}: {exc}") from exc
    # A subject is one line: headers cannot carry newlines.
    one_line = " ".join(parts["email_subject"].split())[:300]
    return RenderedEmail(subject=one_line, text=parts["email_text"], html=parts["email_html"])
