"""Forms of the dashboard's content pages.

Django forms parse what a browser posts (strings, checkboxes) and carry field errors back to the
page; the rules themselves are the API's: each form hands its typed values to the same DRF
serializer the API uses (``TypeUpsertSerializer``, ``SendSerializer``) and shows its errors on
the matching fields, so the dashboard can never accept what the API refuses, or the reverse.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, time, timedelta
from typing import Any, cast

from django import forms
from django.http import HttpRequest
from django.utils import timezone

from dashboard.forms_locales import posted_locales
from dashboard.selectors_content import SendFilters, type_choices
from dashboard.services_content import Sample
from herald import safejson
from notifications import selectors
from notifications.channel_rules import RULED_CHANNELS
from notifications.channels.names import CHANNEL_LABELS
from notifications.localisation import locale_normalise
from notifications.models import CHANNEL_CHOICES, EndUser, NotificationType, Send
from notifications.rules import type_key_valid
from notifications.serializers import SendSerializer, TypeUpsertSerializer

KEY_HELP = (
    "1 to 100 lowercase letters, digits, '_', '.' or '-', starting with a letter or digit. "
    "Your backend names it in each send; it cannot change later."
)
SEARCH_MAX = 200


def _flatten(errors: Any) -> list[str]:
    """DRF's nested error lists and dicts as plain messages."""
    if isinstance(errors, dict):
        return [message for value in errors.values() for message in _flatten(value)]
    if isinstance(errors, list):
        return [message for value in errors for message in _flatten(value)]
    return [str(errors)]


def _apply_serializer_errors(
    form: forms.Form, errors: dict[str, Any], fields: dict[str, str] | None = None
) -> None:
    """Show a serializer's errors on the form's fields (``fields`` maps API names to form
    names where they differ); anything else becomes a form-wide error."""
    fields = fields or {}
    for name, value in errors.items():
        target: str | None = fields.get(name, name)
        if target not in form.fields:
            target = None
        for message in _flatten(value):
            form.add_error(target, message)


def _lines(value: str) -> str:
    """Browsers post textareas with CRLF line ends; store what the API would get."""
    return value.replace("\r\n", "\n")


class ChannelsField(forms.MultipleChoiceField):
    widget = forms.CheckboxSelectMultiple

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=CHANNEL_CHOICES, **kwargs)


# --- The send log ---------------------------------------------------------------------------


class SendFilterForm(forms.Form):
    """The send log's filters (GET). ``filters()`` is only valid after ``is_valid()``."""

    STATUS_CHOICES = [("", "Any status"), *Send.Status.choices]

    q = forms.CharField(
        required=False,
        max_length=SEARCH_MAX,
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "Words in the title or message"}
        ),
    )
    type = forms.ChoiceField(required=False)
    recipient = forms.CharField(required=False, max_length=255, label="Recipient id")
    status = forms.ChoiceField(required=False, choices=STATUS_CHOICES)
    created_from = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    created_to = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["type"]).choices = [("", "All types"), *type_choices()]
        self._type: NotificationType | None = None
        self._recipient: EndUser | None = None

    def clean_type(self) -> str:
        key = self.cleaned_data["type"]
        if key:
            self._type = selectors.type_get(key=key)
        return key

    def clean_recipient(self) -> str:
        external_id = self.cleaned_data["recipient"]
        if external_id:
            self._recipient = selectors.end_user_get(external_id=external_id)
            if self._recipient is None:
                raise forms.ValidationError("No user has this id.")
        return external_id

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            self.add_error("created_to", "Pick a day on or after the start day.")
        return data

    @property
    def active(self) -> bool:
        return self.is_bound and any(self.data.get(name) for name in self.fields)

    def filters(self) -> SendFilters:
        data = self.cleaned_data
        start, end = data.get("created_from"), data.get("created_to")
        return SendFilters(
            type=self._type,
            recipient=self._recipient,
            status=data.get("status") or "",
            created_from=_utc_midnight(start) if start else None,
            created_to=_utc_midnight(end) + timedelta(days=1) if end else None,
            search=data.get("q") or "",
        )


def _utc_midnight(day: Any) -> datetime:
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


class NotificationTestForm(forms.Form):
    """Send one notification to one existing user, as the API would."""

    recipient = forms.CharField(
        max_length=255,
        label="Recipient",
        help_text="The user's id in your app (their external id).",
        widget=forms.TextInput(attrs={"list": "recipient-options", "autocomplete": "off"}),
    )
    type = forms.ChoiceField(label="Type")
    title = forms.CharField(required=False, max_length=300)
    message = forms.CharField(max_length=10_000, widget=forms.Textarea(attrs={"rows": 4}))
    url = forms.CharField(
        required=False,
        max_length=2000,
        label="Link",
        widget=forms.URLInput(attrs={"placeholder": "https://"}),
    )
    channels = ChannelsField(required=False, help_text="None ticked: the type's default channels.")
    idempotency_key = forms.RegexField(
        regex=r"^[0-9a-f]{32}$",
        widget=forms.HiddenInput,
        error_messages={
            "invalid": "This form is out of date: reload the page and send again.",
            "required": "This form is out of date: reload the page and send again.",
        },
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {}).setdefault("idempotency_key", uuid.uuid4().hex)
        super().__init__(*args, **kwargs)
        cast(forms.ChoiceField, self.fields["type"]).choices = type_choices()

    def clean_recipient(self) -> str:
        external_id = self.cleaned_data["recipient"]
        if selectors.end_user_get(external_id=external_id) is None:
            raise forms.ValidationError(
                "No user has this id. Users appear when your backend sends to them or "
                "creates them with PUT /api/v1/users/{id}."
            )
        return external_id

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if self.errors:
            return data
        body = {
            "type": data["type"],
            "recipients": [data["recipient"]],
            "title": data["title"],
            "message": _lines(data["message"]),
            "url": data["url"],
        }
        if data["channels"]:
            body["channels"] = data["channels"]
        serializer = SendSerializer(data=body)
        if not serializer.is_valid():
            _apply_serializer_errors(self, serializer.errors, {"recipients": "recipient"})
            return data
        data["message"] = body["message"]
        return data


# --- Types --------------------------------------------------------------------------------------

TEMPLATE_FIELDS = ("email_subject", "email_text", "email_html")


# A delayed channel's rule in plain words: "Send [immediately | after] [N] [minutes]" and
# "[ ] only if still unread", one group of fields per channel (``TypeForm.rule_channels``).
TIMING_CHOICES = [("now", "immediately"), ("after", "after")]
UNITS = {"seconds": 1, "minutes": 60, "hours": 3600}
RULE_PARTS = ("timing", "amount", "unit", "only_if_unread")


def _rule_fields() -> dict[str, forms.Field]:
    fields: dict[str, forms.Field] = {}
    for channel in RULED_CHANNELS:
        fields[f"rule_{channel}_timing"] = forms.ChoiceField(
            choices=TIMING_CHOICES,
            initial="now",
            required=False,
            widget=forms.RadioSelect,
            label=f"Send {CHANNEL_LABELS[channel].lower()}",
        )
        fields[f"rule_{channel}_amount"] = forms.IntegerField(
            required=False,
            min_value=1,
            label="How long",
            widget=forms.NumberInput(attrs={"min": 1, "class": "short"}),
        )
        fields[f"rule_{channel}_unit"] = forms.ChoiceField(
            choices=[(unit, unit) for unit in UNITS], initial="minutes", required=False
        )
        fields[f"rule_{channel}_only_if_unread"] = forms.BooleanField(
            required=False, label="only if still unread (not read or archived by then)"
        )
    return fields


def rules_initial(rules: dict[str, Any]) -> dict[str, Any]:
    """The rule fields' initial values for a type's stored ``channel_rules``."""
    initial: dict[str, Any] = {}
    for channel, rule in rules.items():
        if channel not in RULED_CHANNELS:
            continue
        delay = int(rule.get("delay_seconds", 0))
        unit = next(u for u in ("hours", "minutes", "seconds") if delay % UNITS[u] == 0)
        initial.update({
            f"rule_{channel}_timing": "after" if delay else "now",
            f"rule_{channel}_amount": delay // UNITS[unit] if delay else None,
            f"rule_{channel}_unit": unit if delay else "minutes",
            f"rule_{channel}_only_if_unread": bool(rule.get("only_if_unread")),
        })  # fmt: skip
    return initial


class TypeForm(forms.Form):
    """Create (``key`` given) or edit a notification type with the API's rules, including the
    plan's: a digest window needs a plan with digests."""

    key = forms.CharField(max_length=100, help_text=KEY_HELP)
    name = forms.CharField(
        required=False, max_length=200, help_text="Shown to you and in unsubscribe pages."
    )
    channels = ChannelsField(help_text="Where a send of this type goes unless it names channels.")
    critical = forms.BooleanField(
        required=False,
        label="Critical",
        help_text="Delivered even to users who turned this type or channel off.",
    )
    digest_window_seconds = forms.IntegerField(
        required=False,
        label="Digest window (seconds)",
        help_text="Collect a user's emails of this type and send one digest per window "
        "(60 to 604800). Blank: every email goes out on its own.",
        widget=forms.NumberInput(attrs={"min": 60, "max": 604800, "step": 60}),
    )
    email_subject = forms.CharField(required=False, max_length=300, strip=False, label="Subject")
    email_text = forms.CharField(
        required=False,
        max_length=100_000,
        strip=False,
        label="Plain text",
        widget=forms.Textarea(attrs={"rows": 8, "spellcheck": "false"}),
    )
    email_html = forms.CharField(
        required=False,
        max_length=200_000,
        strip=False,
        label="HTML",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, creating: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.creating = creating
        if not creating:
            del self.fields["key"]
        self.fields.update(_rule_fields())
        self.fields["email_subject"].widget.attrs["spellcheck"] = "false"

    def clean_key(self) -> str:
        key = self.cleaned_data["key"]
        if not type_key_valid(key):
            raise forms.ValidationError(KEY_HELP.split(". ")[0] + ".")
        if selectors.type_get(key=key) is not None:
            raise forms.ValidationError("A type with this key exists already.")
        return key

    def clean(self) -> dict[str, Any]:
        """Every field that parsed goes through the API's serializer (the serializer's fields
        are all optional), so one submission shows every problem at once."""
        super().clean()
        data = self.cleaned_data
        fields: dict[str, Any] = {
            name: data[name]
            for name in ("channels", "critical", "digest_window_seconds")
            if name in data
        }
        fields.update({name: _lines(data[name]) for name in TEMPLATE_FIELDS if name in data})
        name = (data.get("name") or "").strip() or data.get("key") or ""
        if name:  # editing with a blank name: the key stands in (fields_for_upsert)
            fields["name"] = name
        fields["channel_rules"] = self._channel_rules()
        serializer = TypeUpsertSerializer(data=fields)
        if not serializer.is_valid():
            _apply_serializer_errors(self, serializer.errors, self._rule_error_fields())
            return data
        self.type_fields = dict(serializer.validated_data)
        return data

    def rule_channels(self) -> list[dict[str, Any]]:
        """Each ruled channel's label and bound fields, for the template."""
        return [
            {
                "name": channel,
                "label": CHANNEL_LABELS[channel],
                **{part: self[f"rule_{channel}_{part}"] for part in RULE_PARTS},
                "errors": [
                    error for part in RULE_PARTS for error in self[f"rule_{channel}_{part}"].errors
                ],
            }
            for channel in RULED_CHANNELS
        ]

    def _channel_rules(self) -> dict[str, dict[str, Any]]:
        """The rule fields as the API's ``channel_rules``: a channel that goes out
        immediately, whatever the notification's state, has no rule."""
        data, rules = self.cleaned_data, {}
        for channel in RULED_CHANNELS:
            later = data.get(f"rule_{channel}_timing") == "after"
            amount = data.get(f"rule_{channel}_amount")
            only_if_unread = bool(data.get(f"rule_{channel}_only_if_unread"))
            if later and amount is None:
                if f"rule_{channel}_amount" not in self.errors:
                    self.add_error(f"rule_{channel}_amount", "Say how long to wait.")
                continue
            unit = UNITS.get(data.get(f"rule_{channel}_unit") or "minutes", 60)
            delay = amount * unit if later and amount else 0
            if delay or only_if_unread:
                rules[channel] = {"delay_seconds": delay, "only_if_unread": only_if_unread}
        return rules

    @staticmethod
    def _rule_error_fields() -> dict[str, str]:
        """The API's names of rule errors -> the fields that show them."""
        return {
            f"channel_rules.{channel}.{name}": f"rule_{channel}_{part}"
            for channel in RULED_CHANNELS
            for name, part in (("delay_seconds", "amount"), ("only_if_unread", "only_if_unread"))
        }

    def fields_for_upsert(self, key: str) -> dict[str, Any]:
        """What ``type_upsert`` gets: every field, the name defaulting to the key."""
        return {"name": key, **self.type_fields}


class PreviewForm(forms.Form):
    """What the live preview renders: the editor's templates and the sample notification."""

    key = forms.CharField(required=False, max_length=100)
    email_subject = forms.CharField(required=False, max_length=300, strip=False)
    email_text = forms.CharField(required=False, max_length=100_000, strip=False)
    email_html = forms.CharField(required=False, max_length=200_000, strip=False)
    sample_title = forms.CharField(required=False, max_length=300, label="Title")
    sample_message = forms.CharField(
        required=False, max_length=10_000, strip=False, label="Message"
    )
    sample_url = forms.CharField(required=False, max_length=2000, label="Link")
    sample_data = forms.CharField(
        required=False, max_length=16_384, label="Data (JSON object)", strip=False
    )
    preview_locale = forms.CharField(
        required=False,
        max_length=64,
        label="Recipient's locale",
        help_text="Preview for a recipient with this locale, e.g. de-AT.",
    )

    def clean_preview_locale(self) -> str:
        raw = self.cleaned_data["preview_locale"].strip()
        if not raw:
            return Sample().user_locale
        tag = locale_normalise(raw)
        if not tag:
            raise forms.ValidationError("Not a valid language tag, e.g. de or de-AT.")
        return tag

    def locale(self) -> str:
        return str(self.cleaned_data["preview_locale"])

    def locales(self) -> dict[str, dict[str, str]]:
        """The per-locale texts the editor holds now (saved or not)."""
        return posted_locales(self.data)

    def clean_sample_data(self) -> dict[str, Any]:
        raw = self.cleaned_data["sample_data"].strip()
        if not raw:
            return {}
        try:
            value = safejson.loads(raw)
        except ValueError as exc:  # malformed, nested too deep, or holding NUL
            raise forms.ValidationError(f"Sample data is not valid JSON: {exc}.") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError('Sample data must be a JSON object, like {"a": 1}.')
        return value

    def key_for_preview(self) -> str:
        key = self.cleaned_data.get("key") or ""
        return key if type_key_valid(key) else "preview"

    def templates(self) -> tuple[str, str, str]:
        return tuple(_lines(self.cleaned_data[name]) for name in TEMPLATE_FIELDS)  # type: ignore[return-value]

    def sample(self) -> Sample:
        data = self.cleaned_data
        defaults = Sample()
        return Sample(
            title=data["sample_title"],
            message=_lines(data["sample_message"]),
            url=data["sample_url"],
            data=data["sample_data"],
            user_id=defaults.user_id,
            user_name=defaults.user_name,
            user_email=defaults.user_email,
            user_locale=self.locale(),
        )

    def error_text(self) -> str:
        return " ".join(
            f"{self.fields[name].label or name}: {message}" if name != "__all__" else str(message)
            for name, messages in self.errors.items()
            for message in messages
        )


def sample_initial() -> dict[str, str]:
    """The sample notification's fields as the editor shows them at first."""
    sample = Sample()
    return {
        "sample_title": sample.title,
        "sample_message": sample.message,
        "sample_url": sample.url,
        "sample_data": json.dumps(sample.data, indent=2),
        "preview_locale": sample.user_locale,
    }


def page_param(request: HttpRequest, name: str) -> tuple[int | None, bool]:
    """A keyset page marker from the query string: (id, whether it was malformed). A bad one
    (edited by hand) shows the first page with a notice instead of an error page."""
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None, False
    if raw.isascii() and raw.isdigit() and 0 < len(raw) <= 18:
        return int(raw), False
    return None, True


def pager(request: HttpRequest, name: str, next_value: int | None) -> dict[str, Any]:
    """Links of a keyset pager that keep the other query parameters: the next page's, and the
    first page's (None on the first page)."""
    query = request.GET.copy()
    on_first = not request.GET.get(name)
    query.pop(name, None)
    first = f"?{query.urlencode()}" if query else "?"
    following = None
    if next_value is not None:
        query[name] = str(next_value)
        following = f"?{query.urlencode()}"
    return {"next_href": following, "first_href": None if on_first else first}


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=SEARCH_MAX, label="Search")
