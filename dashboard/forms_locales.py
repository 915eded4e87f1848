"""The type editor's per-locale texts: one small form per locale, in a formset.

A locale is added by filling in the blank form at the end (its tag and any texts) and removed
by ticking its "Remove" box; both take effect on save. The tag is normalised as the type
stores it (``de_at`` -> ``de-AT``). The forms check what they can show next to a field (a bad
or repeated tag, a template that does not parse); ``type_locales_clean`` decides, and its
refusals come back to the same fields through ``apply_refusal``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django import forms
from django.forms import formset_factory

from herald.domain import DomainError
from notifications.localisation import LOCALISED_FIELDS, LOCALISED_MAX_LENGTH, locale_normalise
from notifications.serializers import TIME_ZONES
from notifications.templating import compile_errors

PREFIX = "locales"
TAG_HELP = "A language tag, e.g. de, de-AT or pt-BR."
LABELS = {
    "title": "Title",
    "message": "Message",
    "email_subject": "Email subject",
    "email_text": "Email plain text",
    "email_html": "Email HTML",
}


def _lines(value: str) -> str:
    return value.replace("\r\n", "\n")


class LocaleForm(forms.Form):
    tag = forms.CharField(
        required=False, max_length=64, label="Locale", help_text=TAG_HELP, strip=True
    )
    title = forms.CharField(required=False, strip=False, max_length=LOCALISED_MAX_LENGTH["title"])
    message = forms.CharField(
        required=False,
        strip=False,
        max_length=LOCALISED_MAX_LENGTH["message"],
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
    )
    email_subject = forms.CharField(
        required=False, strip=False, max_length=LOCALISED_MAX_LENGTH["email_subject"]
    )
    email_text = forms.CharField(
        required=False,
        strip=False,
        max_length=LOCALISED_MAX_LENGTH["email_text"],
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )
    email_html = forms.CharField(
        required=False,
        strip=False,
        max_length=LOCALISED_MAX_LENGTH["email_html"],
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in LOCALISED_FIELDS:
            self.fields[name].label = LABELS[name]

    def clean_tag(self) -> str:
        raw = self.cleaned_data["tag"]
        if not raw:
            return ""
        tag = locale_normalise(raw)
        if not tag:
            raise forms.ValidationError(f"Not a valid language tag. {TAG_HELP}")
        return tag

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in LOCALISED_FIELDS:
            text = _lines(data.get(name) or "")
            data[name] = text
            if text and (error := compile_errors(text, html=name == "email_html")):
                self.add_error(name, error)
        texts = any(data.get(name) for name in LOCALISED_FIELDS)
        if texts and not data.get("tag") and "tag" not in self.errors:
            self.add_error("tag", f"Name the locale these texts are for. {TAG_HELP}")
        return data

    def texts(self) -> dict[str, str]:
        return {name: text for name in LOCALISED_FIELDS if (text := self.cleaned_data[name])}


def _removed(form: forms.Form) -> bool:
    return bool(getattr(form, "cleaned_data", {}).get("DELETE"))


class BaseLocaleFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        seen: dict[str, str] = {}
        for form in self.forms:
            if not form.is_valid() or _removed(form):
                continue
            tag = form.cleaned_data.get("tag")
            if not tag:
                continue
            if tag in seen:
                form.add_error("tag", f"{tag} is here twice (as {seen[tag]!r} above).")
            else:
                seen[tag] = form.data.get(form.add_prefix("tag"), tag)

    def locales(self) -> dict[str, dict[str, str]] | None:
        """What ``type_upsert(locales=...)`` gets: the kept forms with a tag, or None (leave
        them as they are) when the post had no locale forms. Valid only."""
        if not self.is_bound:
            return None
        return {
            form.cleaned_data["tag"]: form.texts()
            for form in self.forms
            if form.cleaned_data.get("tag") and not _removed(form)
        }

    def apply_refusal(self, error: DomainError) -> bool:
        """Show the service's ``locales.<tag>[.<field>]`` details on the matching forms;
        False when the error names none."""
        shown = False
        for key, texts in (error.details or {}).items():
            parts = key.split(".", 2)
            if parts[0] != PREFIX or len(parts) < 2:
                continue
            for form in self.forms:
                if form.is_valid() and form.cleaned_data.get("tag") == locale_normalise(parts[1]):
                    field = parts[2] if len(parts) == 3 and parts[2] in form.fields else "tag"
                    form.add_error(field, texts)
                    shown = True
        return shown


LocaleFormSet = formset_factory(
    LocaleForm, formset=BaseLocaleFormSet, extra=1, can_delete=True, max_num=50
)


def locale_formset(
    data: Mapping[str, Any] | None, saved: Mapping[str, Mapping[str, str]]
) -> BaseLocaleFormSet:
    """The editor's locale forms: the posted ones, or the saved locales and one blank form.
    A post without them (a client other than the editor) leaves the saved locales alone."""
    initial = [{"tag": tag, **texts} for tag, texts in sorted(saved.items())]
    posted = data if data and f"{PREFIX}-TOTAL_FORMS" in data else None
    formset = LocaleFormSet(posted, initial=initial, prefix=PREFIX)
    for form in formset.forms:
        form.fields["DELETE"].label = "Remove this locale"
    return cast(BaseLocaleFormSet, formset)


def posted_locales(data: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The locales an editor's form holds right now, for the preview: forms with a valid tag
    that are not being removed (the first of a repeated tag wins). Never raises."""
    try:
        total = min(int(data.get(f"{PREFIX}-TOTAL_FORMS", 0)), 50)
    except (TypeError, ValueError):
        return {}
    locales: dict[str, dict[str, str]] = {}
    for index in range(total):
        prefix = f"{PREFIX}-{index}-"
        tag = locale_normalise(str(data.get(f"{prefix}tag", "")).strip())
        if not tag or data.get(f"{prefix}DELETE") or tag in locales:
            continue
        locales[tag] = {
            name: _lines(str(data.get(f"{prefix}{name}", ""))) for name in LOCALISED_FIELDS
        }
    return locales


class UserLocaleForm(forms.Form):
    """An end user's locale (stored normalised) and time zone (IANA), from their page."""

    locale = forms.CharField(
        required=False,
        max_length=64,
        label="Locale",
        help_text=f"Picks the texts this user receives. {TAG_HELP} Blank: none.",
        widget=forms.TextInput(attrs={"spellcheck": "false", "autocomplete": "off"}),
    )
    timezone = forms.ChoiceField(required=False, label="Time zone")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [("", "None"), *((name, name) for name in TIME_ZONES)]
        cast(forms.ChoiceField, self.fields["timezone"]).choices = choices

    def clean_locale(self) -> str:
        tag = locale_normalise(self.cleaned_data["locale"].strip())
        if tag is None:
            raise forms.ValidationError(f"Not a valid language tag. {TAG_HELP}")
        return tag
