"""Dashboard pages for sends, end users and notification types (namespace "dashboard").

Build links with ``dashboard.templatetags.content_links``: external ids are percent-encoded
as one segment (they may hold ``/``), and a type keyed ``new`` or ``preview`` is edited at
``types/<key>/edit``.
"""

from django.urls import path, register_converter

from dashboard.views import sends, topics, types, users
from notifications.rules import TYPE_KEY_REGEX


class TypeKeyConverter:
    regex = TYPE_KEY_REGEX

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        return value


register_converter(TypeKeyConverter, "type_key")

urlpatterns = [
    path("notifications/", sends.send_list, name="sends"),
    path("notifications/test", sends.test_send, name="send-test"),
    path(
        "notifications/test/recipients",
        sends.recipient_suggestions,
        name="send-test-recipients",
    ),
    path("notifications/<int:send_id>", sends.send_detail, name="send"),
    path("notifications/<int:send_id>/cancel", sends.send_cancel_view, name="send-cancel"),
    path("users/", users.user_list_view, name="users"),
    # Erase first: it erases only when its form names the user, and is otherwise the page of
    # the user whose own id ends in "/erase".
    path("users/<path:external_id>/erase", users.user_erase_view, name="user-erase"),
    path("users/<path:external_id>", users.user_detail, name="user"),
    path("types/", types.type_list, name="types"),
    path("types/new", types.type_create, name="type-new"),
    path("types/preview", types.type_preview, name="type-preview"),
    path("types/<type_key:key>", types.type_edit, name="type"),
    path("types/<type_key:key>/edit", types.type_edit, name="type-edit"),
    path("types/<type_key:key>/preview", types.type_saved_preview, name="type-saved-preview"),
    path("types/<type_key:key>/test-email", types.type_test_email, name="type-test-email"),
    path("topics/", topics.topic_list, name="topics"),
    # "_" starts no topic key: this URL never names a topic.
    path("topics/_subscribe", topics.topic_picked_subscribe, name="topic-picked-subscribe"),
    path("topics/<type_key:key>", topics.topic_detail, name="topic"),
    path("topics/<type_key:key>/delete", topics.topic_delete_view, name="topic-delete"),
    path(
        "topics/<type_key:key>/subscribers",
        topics.topic_subscribers_view,
        name="topic-subscribers",
    ),
]
