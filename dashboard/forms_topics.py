"""Forms of the dashboard's Topics page and of the topics on a user's page. The rules are the
API's: a topic's fields go through ``TopicUpsertSerializer``, its key through the type key rule."""

from __future__ import annotations

from typing import Any

from django import forms

from notifications.rules import TYPE_KEY_MESSAGE, type_key_valid
from notifications.serializers import MAX_EXTERNAL_ID
from notifications.topic_serializers import TopicUpsertSerializer

TOPIC_KEY_HELP = (
    "1 to 100 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit. "
    "Your backend names it in sends; it cannot change later."
)


class TopicForm(forms.Form):
    """Create (``key`` given) or edit a topic."""

    key = forms.CharField(max_length=100, help_text=TOPIC_KEY_HELP)
    name = forms.CharField(required=False, max_length=200)
    self_service = forms.BooleanField(
        required=False,
        label="Self-service",
        help_text="End users may subscribe and unsubscribe themselves (the widget, "
        "/api/v1/me/topics). Other topics are invisible to them.",
    )

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not creating:
            del self.fields["key"]

    def clean_key(self) -> str:
        key: str = self.cleaned_data["key"]
        if not type_key_valid(key):
            raise forms.ValidationError(TYPE_KEY_MESSAGE)
        return key

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        serializer = TopicUpsertSerializer(
            data={"name": cleaned.get("name", ""), "self_service": cleaned.get("self_service")}
        )
        if not serializer.is_valid():
            for name, messages in serializer.errors.items():
                for message in messages:
                    self.add_error(name if name in self.fields else None, str(message))
        return cleaned


class SubscriberForm(forms.Form):
    """Subscribe a user to a topic, or unsubscribe them."""

    external_id = forms.CharField(max_length=MAX_EXTERNAL_ID, label="User id", strip=False)
    action = forms.ChoiceField(choices=[("subscribe", "Subscribe"), ("unsubscribe", "Unsubscribe")])
