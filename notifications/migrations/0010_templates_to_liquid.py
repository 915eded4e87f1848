"""Convert the email templates of every type from Django template syntax to Liquid.

Runs in each tenant's schema and in the template schema new tenants are cloned from. Blank
templates stay blank (they take Herald's defaults, now Liquid too). Each stored template goes
through ``_django_to_liquid.django_to_liquid``.

A template that cannot be converted (a tag or filter without a Liquid equivalent, a condition
Liquid cannot state the same way) is **kept, never lost, and made loudly inert**: its original
text stays in the field after a first line that names the reason and starts with the tag
``{% rewrite_this_django_template_in_liquid %}``. Liquid knows no such tag, so the template no
longer parses: every delivery of the type fails with that tag in ``last_error`` (no email goes
out with half-converted text), the dashboard's editor and preview show the reason, and the
admin rewrites it from the original below. Should even that not fit the field (subjects hold
300 characters), the original stays unchanged. Each such template is logged as a warning with
its schema, type and field.

Backwards, nothing is converted back: the templates stay as they are.
"""

import logging

from django.db import migrations

from notifications.migrations._django_to_liquid import NotConvertible, django_to_liquid

logger = logging.getLogger("herald.migrations")

FIELDS = ("email_subject", "email_text", "email_html")
MARKER = "{% rewrite_this_django_template_in_liquid %}"


def converted(source: str, max_length: int | None) -> tuple[str, str | None]:
    """The Liquid text to store for ``source``, and why it could not be converted (None when
    it was)."""
    try:
        liquid = django_to_liquid(source)
    except NotConvertible as exc:
        # The reason goes into a Liquid comment: nothing in it may open or close a tag.
        reason = str(exc).replace("{", "(").replace("}", ")").replace("%", "")
        text = f"{MARKER}{{% comment %}}Not converted from Django syntax: {reason}. The original " \
            f"follows; rewrite it in Liquid.{{% endcomment %}}\n{source}"  # fmt: skip
        if max_length is not None and len(text) > max_length:
            return source, reason
        return text, reason
    if max_length is not None and len(liquid) > max_length:
        return source, "the Liquid version is longer than the field allows"
    return liquid, None


def templates_to_liquid(apps, schema_editor) -> None:
    NotificationType = apps.get_model("notifications", "NotificationType")
    schema = getattr(schema_editor.connection, "schema_name", "")
    limits = {name: NotificationType._meta.get_field(name).max_length for name in FIELDS}
    for notification_type in NotificationType.objects.order_by("pk"):
        changed = []
        for name in FIELDS:
            source = getattr(notification_type, name)
            if not source:
                continue
            text, reason = converted(source, limits[name])
            if reason is not None:
                logger.warning(
                    "Template not converted to Liquid: schema %s, type %s, %s: %s",
                    schema, notification_type.key, name, reason,
                )  # fmt: skip
            if text != source:
                setattr(notification_type, name, text)
                changed.append(name)
        if changed:
            notification_type.save(update_fields=changed)


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0009_notification_recipient_fk_removed"),
    ]

    operations = [
        migrations.RunPython(templates_to_liquid, migrations.RunPython.noop, elidable=False),
    ]
