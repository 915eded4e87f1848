"""``dashboard.refusals``: the one place a service's domain error becomes a form error."""

from __future__ import annotations

from django import forms

from dashboard.refusals import form_refusal
from herald.domain import Conflict, NotInPlan, OverQuota
from tenants.services import ProvisioningError


class Form(forms.Form):
    slug = forms.CharField(required=False)
    digest = forms.IntegerField(required=False)


def refused(error, wording=None) -> dict[str, list[str]]:
    form = Form({})
    assert form.is_valid()
    form_refusal(form, error, wording)
    return {name: list(errors) for name, errors in form.errors.items()}


def test_field_messages_go_on_their_fields_and_the_rest_above_the_form():
    error = ProvisioningError({"slug": ["Taken."], "email": ["Known."]})
    assert refused(error) == {"slug": ["Taken."], "__all__": ["Known."]}


def test_an_error_without_field_messages_shows_its_message_above_the_form():
    error = OverQuota("Over the quota.", details={"remaining": 0, "limit": 5})
    assert refused(error) == {"__all__": ["Over the quota."]}
    assert refused(Conflict("Busy.")) == {"__all__": ["Busy."]}


def test_a_page_may_word_a_kind_of_refusal_itself():
    error = NotInPlan("No digests.", details={"digest": ["Needs a plan."]})
    assert refused(error, {NotInPlan: "Leave it blank."}) == {"digest": ["Leave it blank."]}
    assert refused(Conflict("Busy."), {Conflict: "Reload."}) == {"__all__": ["Reload."]}
    assert refused(error) == {"digest": ["Needs a plan."]}
