"""Migration 0010: email templates saved in Django syntax become Liquid; what cannot be converted
is kept, and made to fail loudly instead of rendering something else."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.template import Context, Engine
from django_tenants.utils import schema_context

from notifications.migrations._django_to_liquid import NotConvertible, django_to_liquid
from notifications.models import NotificationType
from notifications.templating import compile_errors, plain_context, render

migration = importlib.import_module("notifications.migrations.0010_templates_to_liquid")

CONVERTED = [
    ("Hi {{ user.name }}", "Hi {{ user.name }}"),
    ("{{ data.items.0 }}", "{{ data.items[0] }}"),
    ("{{ data.empty }}{{ data.for.blank }}", '{{ data["empty"] }}{{ data["for"]["blank"] }}'),
    ("{{ message|truncatechars:100 }}", '{{ message | truncate: 100, "…" }}'),
    ("{{ message|truncatewords:3 }}", '{{ message | truncatewords: 3, " …" }}'),
    ("{{ message|linebreaksbr }}", "{{ message | newline_to_br }}"),
    ('{{ user.name|default:"friend"|upper }}', '{{ user.name | default: "friend" | upcase }}'),
    ("{{ title|lower|escape|safe }}", "{{ title | downcase | escape | safe }}"),
    ("{{ data.tags|join:', '|length }}", '{{ data.tags | join: ", " | size }}'),
    ("{{ n }} item{{ n|pluralize }}", "{{ n }} item{% if n != 1 %}s{% endif %}"),
    ('{{ n|pluralize:"y,ies" }}', "{% if n == 1 %}y{% else %}ies{% endif %}"),
    ("{% if url %}{{ url }}{% elif title %}T{% else %}-{% endif %}",
     "{% if url %}{{ url }}{% elsif title %}T{% else %}-{% endif %}"),
    ("{% if not url %}none{% else %}{{ url }}{% endif %}",
     "{% unless url %}none{% else %}{{ url }}{% endunless %}"),
    ("{% if not a and not b %}x{% endif %}", "{% unless a or b %}x{% endunless %}"),
    # Liquid reads and/or right to left: the single terms go first.
    ("{% if a and b or c %}x{% endif %}", "{% if c or a and b %}x{% endif %}"),
    ("{% if not n > 2 %}x{% endif %}", "{% if n <= 2 %}x{% endif %}"),
    ("{% if 'vip' in data.tags %}x{% endif %}", '{% if data.tags contains "vip" %}x{% endif %}'),
    ("{% if x not in data.tags %}x{% endif %}",
     "{% unless data.tags contains x %}x{% endunless %}"),
    ("{% if x is None %}x{% endif %}", "{% if x == nil %}x{% endif %}"),
    ("{% if data.items|length > 2 %}x{% endif %}", "{% if data.items.size > 2 %}x{% endif %}"),
    ("{% if a %}{% if data.x|upper == 'A' %}y{% endif %}{% endif %}",
     '{% if a %}{% assign converted_1 = data.x | upcase %}{% if converted_1 == "A" %}y{% endif %}'
     "{% endif %}"),
    ("{% for x in data.items reversed %}{{ forloop.counter }}{{ x }}{% empty %}-{% endfor %}",
     "{% for x in data.items reversed %}{{ forloop.index }}{{ x }}{% else %}-{% endfor %}"),
    ("{% for x in data.items %}{{ forloop.revcounter0 }}{{ forloop.first }}{% endfor %}",
     "{% for x in data.items %}{{ forloop.rindex0 }}{{ forloop.first }}{% endfor %}"),
    ('{% with s="abc" %}{{ s }}{% endwith %}', '{% assign s = "abc" %}{{ s }}'),
    ("{% firstof user.name user.email 'you' %}",
     '{{ user.name | default: user.email | default: "you" }}'),
    ("{# note {{ x }} #}{% comment %}{% if %}{% endcomment %}ok",
     "{% comment %}note { { x } }{% endcomment %}{% comment %}{ % if % }{% endcomment %}ok"),
    ("{% verbatim %}{{ x }}{% endverbatim %}{% templatetag openvariable %}",
     "{% raw %}{{ x }}{% endraw %}{% raw %}{{{% endraw %}"),
    ("{% load i18n %}{% spaceless %}<p> </p>{% endspaceless %}", "<p> </p>"),
]  # fmt: skip


@pytest.mark.parametrize(("django", "liquid"), CONVERTED)
def test_django_syntax_becomes_liquid_that_parses(django, liquid):
    assert django_to_liquid(django) == liquid
    assert compile_errors(liquid) is None


CONTEXT = {
    "title": "Big <news>",
    "message": "one two three four five",
    "url": "",
    "user": {"name": "", "email": "ada@example.com"},
    "data": {"items": [3, 1, 2], "tags": ["vip", "new"], "x": "a", "nothing": []},
    "n": 2,
    "a": True,
    "b": False,
    "c": False,
}
SAME_OUTPUT = [
    "{% if title %}{{ title }}{% else %}{{ message|truncatechars:10 }}{% endif %}",
    "{{ message|truncatechars:10 }}|{{ message|truncatewords:2 }}",
    "{% firstof user.name user.email 'you' %} {{ user.name|default:'friend'|upper }}",
    "{% for x in data.items reversed %}{{ forloop.counter }}:{{ x }} {% empty %}-{% endfor %}",
    "{% if a and b or c %}1{% elif a %}2{% else %}3{% endif %}{% if not b and not c %}4{% endif %}",
    "{% if 'vip' in data.tags %}vip{% endif %}{% if 'old' not in data.tags %} new{% endif %}",
    "{% if data.items|length > 2 %}{{ n }} item{{ n|pluralize }}{% endif %}",
    "{% if data.x|upper == 'A' %}upper{% endif %}{{ data.items.0 }}",
    "<p>{{ title }}</p>{{ title|safe }}",
    "{% if url %}{{ url }}{% else %}no link{% endif %}{% if user.name %}{{ user.name }}{% endif %}",
    "{% if data.nothing %}x{% else %}empty{% endif %}{% if not data.nothing %}!{% endif %}",
]


@pytest.mark.parametrize("django", SAME_OUTPUT)
def test_converted_templates_render_what_django_rendered(django):
    expected = Engine(autoescape=True).from_string(django).render(Context(CONTEXT))
    assert render(django_to_liquid(django), plain_context(CONTEXT), html=True) == expected


@pytest.mark.parametrize(
    ("django", "reason"),
    [
        ("{% include 'base.html' %}", "the tag 'include'"),
        ("{% now 'Y' %}", "the tag 'now'"),
        ("{% autoescape off %}{{ x }}{% endautoescape %}", "the tag 'autoescape'"),
        ("{{ created|date:'Y-m-d' }}", "the filter 'date'"),
        ("{{ title|title }}", "the filter 'title'"),
        ("{% if a and not b %}x{% endif %}", "cannot state the same way"),
        ("{% if a and b or c and d %}x{% endif %}", "cannot state the same way"),
        ("{% if a %}x{% elif not b %}y{% endif %}", "only state negated"),
        ("{% for k, v in data.items %}{% endfor %}", "several variables"),
        ("{% if a %}x", "not closed"),
        ("{{ empty }}", "cannot read the variable 'empty'"),
    ],
)
def test_what_liquid_cannot_say_the_same_way_is_not_converted(django, reason):
    with pytest.raises(NotConvertible, match=reason):
        django_to_liquid(django)


def test_an_unconvertible_template_is_kept_and_fails_loudly():
    original = "{{ created|date:'Y' }} {{ message }}"
    text, reason = migration.converted(original, None)
    assert "the filter 'date'" in reason
    assert text.endswith("\n" + original)  # the original is kept for the admin to rewrite
    assert "rewrite_this_django_template_in_liquid" in compile_errors(text)
    subject = "{% now 'Y' %}" + "x" * 290
    assert migration.converted(subject, 300) == (subject, "the tag 'now' has no Liquid "
                                                          "equivalent here")  # fmt: skip


def test_the_migration_converts_the_stored_templates_of_a_tenant(world, db):
    with schema_context(world.tenant_a.schema_name):
        NotificationType.objects.create(
            key="legacy",
            name="Legacy",
            email_subject="{{ title|default:'News' }}",
            email_text="{% for x in data.items %}{{ forloop.counter }}{% empty %}-{% endfor %}",
            email_html="{% now 'Y' %}",
        )
        migration.templates_to_liquid(apps, connection.schema_editor())
        converted = NotificationType.objects.get(key="legacy")
    assert converted.email_subject == '{{ title | default: "News" }}'
    assert converted.email_text == (
        "{% for x in data.items %}{{ forloop.index }}{% else %}-{% endfor %}"
    )
    assert converted.email_html.startswith("{% rewrite_this_django_template_in_liquid %}")
    assert converted.email_html.endswith("\n{% now 'Y' %}")


def test_the_migration_ran_in_every_tenant_schema(world, db):
    for tenant in (world.tenant_a, world.tenant_b):
        with schema_context(tenant.schema_name):
            applied = MigrationRecorder(connection).applied_migrations()
        assert ("notifications", "0010_templates_to_liquid") in applied
