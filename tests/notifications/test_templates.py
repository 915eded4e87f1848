"""Tenant templates are Liquid, sandboxed and bounded (notifications.templating), and the types
API refuses one that does not parse, naming the field."""

from __future__ import annotations

import threading
import time

import pytest

from notifications.templating import (
    RenderTimeout,
    TemplateError,
    compile_errors,
    plain_context,
    render,
)

CONTEXT = {
    "title": "Hi",
    "message": "a <b>\nb",
    "user": {"id": "u1", "name": "Ada", "email": "ada@example.com", "locale": "de-AT"},
    "data": {"items": [1, 2, 3]},
}
# Four nested loops of 1,000 turns: a billion turns, were nothing counted.
NESTED = "{% for a in (1..1000) %}{% for b in (1..1000) %}{% for c in (1..1000) %}" \
    "{% for d in (1..1000) %}x{% endfor %}{% endfor %}{% endfor %}{% endfor %}"  # fmt: skip
# Liquid's own limit multiplies nested loops only: 2,000 sibling loops of 1,000 turns pass it.
SIBLINGS = "{% for a in (1..1000) %}{% endfor %}" * 2000
# Each turn renders 4,000 nodes that call nothing (no variable, filter or loop): only the
# per-node deadline check can stop it.
LITERALS = "{% for a in (1..1000) %}" + '{% if "a" == "a" %}{% endif %}' * 4000 + "{% endfor %}"


def test_the_documented_context_renders():
    html = render("{{ user.name }} {{ user.locale }} {{ message | newline_to_br }}", CONTEXT,
                  html=True)  # fmt: skip
    assert html == "Ada de-AT a &lt;b&gt;<br />\nb"
    text = render("{{ message | upcase }} {{ data.items | size }}", CONTEXT, html=False)
    assert text == "A <B>\nB 3"


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (NESTED, "loop iteration limit reached"),
        (SIBLINGS, "loop iteration limit reached"),
        ("{% for a in (1..1000) %}" + "x" * 1000 + "{% endfor %}", "output stream limit reached"),
        ('{% assign s = "xx" %}' + "{% assign s = s | append: s %}" * 40, "local namespace limit"),
        # One call of replace or join would multiply a value by itself: refused before it runs.
        (f'{{% assign s = "{"x" * 1000}" %}}{{{{ s | replace: "x", s }}}}', "value size limit"),
        (f'{{% assign s = "{"x" * 1000}" %}}{{{{ s | split: "" | join: s }}}}', "value size limit"),
        # Each escape makes every & five characters: the chain stops once a value is too big.
        (
            f'{{% assign s = "{"&" * 20000}" %}}{{{{ s | escape | escape | escape | escape }}}}',
            "value size limit",
        ),
    ],
)
def test_a_template_over_a_limit_fails_fast_with_the_reason(source, reason):
    """The limit named stops the render, not its time limit (a ``RenderTimeout``, whose reason
    differs): no wall-clock bound here, which a loaded machine would break."""
    assert compile_errors(source) is None  # it parses, so it can be saved
    with pytest.raises(TemplateError, match=reason) as raised:
        render(source, CONTEXT, html=True)
    assert not isinstance(raised.value, RenderTimeout)


def test_blank_values_are_nil_as_in_the_documented_examples():
    context = plain_context({"title": "", "url": "", "data": {"tags": [], "note": ""}})
    assert context == {"title": None, "url": None, "data": {"tags": None, "note": None}}
    source = "{% if url %}link{% else %}none{% endif %} {{ title | default: 'News' }}"
    assert render(source, context, html=False) == "none News"
    loop = "{% for t in data.tags %}t{% else %}no tags{% endfor %}"
    assert render(loop, context, html=False) == "no tags"


def test_the_render_time_limit_stops_a_render_that_calls_nothing(settings):
    """Guards the per-node deadline check (it relies on python-liquid reading
    ``context.disabled_tags`` before each node renders): should an upgrade stop that, this
    render runs for many seconds instead of stopping at the limit."""
    settings.TEMPLATE_RENDER_TIMEOUT_SECONDS = 0.3
    assert compile_errors(LITERALS, html=False) is None  # parsed and cached before the clock
    started = time.monotonic()
    with pytest.raises(RenderTimeout, match="render time limit reached"):
        render(LITERALS, CONTEXT, html=False)
    assert time.monotonic() - started < 0.3 + 0.3


def test_the_render_time_limit_holds_on_any_thread(settings):
    """The web process renders previews on its request threads, not the main one."""
    settings.TEMPLATE_RENDER_TIMEOUT_SECONDS = 0.3
    assert compile_errors(LITERALS) is None
    outcome: list[BaseException] = []

    def preview() -> None:
        try:
            render(LITERALS, CONTEXT, html=True)
        except TemplateError as exc:
            outcome.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=preview)
    thread.start()
    thread.join(timeout=10)
    assert time.monotonic() - started < 0.3 + 0.3
    assert [type(exc) for exc in outcome] == [RenderTimeout]


def test_three_parts_share_one_deadline():
    deadline = time.monotonic() - 1
    with pytest.raises(RenderTimeout):
        render("{{ title }}", CONTEXT, html=False, deadline=deadline)


@pytest.mark.parametrize(
    "probe",
    [
        "{{ user.__class__ }}",
        "{{ user.__class__.__mro__ }}",
        "{{ user.keys }}",
        "{{ message.__len__ }}",
        "{{ now }}{{ today }}",
        "{{ settings.SECRET_KEY }}",
        "{{ data.items.__class__ }}",
        "{{ forloop.__dict__ }}",
        "{{ partial }}{{ template }}",
    ],
)
def test_probing_past_the_context_reaches_nothing(probe):
    assert compile_errors(probe) is None
    assert render(probe, CONTEXT, html=False) == ""


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("{% include 'base.html' %}", "cannot include or render other templates"),
        ("{% render 'base.html' %}", "cannot include or render other templates"),
        ("{% debug %}", "unexpected tag 'debug'"),
        ("{% extends 'base.html' %}", "unexpected tag 'extends'"),
        ("{% if %}", "Template syntax error"),
        ("{{ user.name | nosuchfilter }}", "Unknown filter: nosuchfilter"),
    ],
)
def test_what_cannot_be_saved_is_explained(source, error):
    assert error in compile_errors(source)


# --- Through the API --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "source"),
    [
        ("email_html", "{% include 'base.html' %}"),
        ("email_text", "{% debug %}"),
        ("email_subject", "{{ title | nosuchfilter }}"),
        ("email_html", "{% for x in data.items %}"),
    ],
)
def test_the_types_api_refuses_a_template_that_does_not_parse(alice_key, field, source):
    response = alice_key.put("/api/v1/types/refused", {"name": "Refused", field: source})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    assert list(error["details"]) == [field]
    assert alice_key.get("/api/v1/types/refused").status_code == 404


def test_the_types_api_keeps_a_liquid_template(alice_key):
    body = {"email_subject": "{{ title | default: 'News' }} for {{ user.name }}"}
    assert alice_key.put("/api/v1/types/liquid", body).status_code == 201
    assert alice_key.get("/api/v1/types/liquid").json()["email_subject"] == body["email_subject"]


def test_a_full_digest_stays_within_the_limits():
    """A digest lists at most DIGEST_ITEMS_SHOWN items of DIGEST_MESSAGE_CHARS each: rendered
    with Herald's digest templates at that size, with long titles and links and a message of
    which a fifth is escaped in HTML, it fits every limit."""
    from notifications.channels.email import digest as digests
    from notifications.channels.email.rendering import render_email

    item = {
        "title": "t" * 300,
        "message": "<abcd" * (digests.DIGEST_MESSAGE_CHARS // 5),
        "url": "https://example.com/?a=1&" + "x" * 500,
    }
    context = {
        **CONTEXT,
        "count": 150,
        "more": 50,
        "items": [item] * digests.DIGEST_ITEMS_SHOWN,
        "tenant": {"name": "Acme"},
        "unsubscribe_url": "https://u",
    }
    email = render_email(
        subject="",
        text="",
        html="",
        context=context,
        defaults=digests.digest_templates(count=150, more=50),
    )
    assert email.subject == "150 new notifications: Hi"
    assert email.text.count("\n- ") == digests.DIGEST_ITEMS_SHOWN - 1
    assert "... and 50 earlier" in email.text
    assert email.html.count("<li>") == digests.DIGEST_ITEMS_SHOWN
    assert len(email.html) < 256 * 1024 / 2  # with room to spare


def test_compiled_templates_are_kept_within_a_budget_of_source_characters():
    from notifications.templating import _CompiledCache, _parse_key, limits

    cache = _CompiledCache(budget=100)
    bounds = _parse_key(limits())
    first = cache.get("{{ title }}" + "a" * 60, False, bounds)
    assert cache.get("{{ title }}" + "a" * 60, False, bounds) is first  # reused
    cache.get("{{ message }}" + "b" * 60, False, bounds)  # over the budget: the first goes
    assert cache.get("{{ title }}" + "a" * 60, False, bounds) is not first
