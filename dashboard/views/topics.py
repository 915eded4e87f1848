"""Topics: list with subscriber counts, create, rename, self-service switch, delete; a topic's
subscribers; subscribing a user (from the topic's page or the user's)."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from dashboard.access import admin_required, object_or_404
from dashboard.forms_content import page_param, pager
from dashboard.forms_topics import SubscriberForm, TopicForm
from dashboard.selectors_content import subscriber_page, topic_page
from dashboard.templatetags.content_links import user_url
from notifications import topic_selectors
from notifications.models import EndUser, Topic
from notifications.services.topics import (
    topic_delete,
    topic_subscribe,
    topic_unsubscribe,
    topic_upsert,
)
from notifications.services.users import RecipientInput

TOPIC_PAGE = 50
SUBSCRIBER_PAGE = 50


def topic_url(key: str) -> str:
    return f"/dashboard/topics/{key}"


@admin_required
@require_http_methods(["GET", "POST"])
def topic_list(request: HttpRequest) -> HttpResponse:
    """GET: the topics, newest first, with their subscribers. POST: create one."""
    form = TopicForm(request.POST or None, creating=True)
    status = 200
    if form.is_bound:
        if form.is_valid():
            key = form.cleaned_data["key"]
            if Topic.objects.filter(key=key).exists():
                form.add_error("key", "A topic with this key exists already.")
                status = 400
            else:
                topic_upsert(
                    key=key,
                    fields={
                        "name": form.cleaned_data["name"],
                        "self_service": form.cleaned_data["self_service"],
                    },
                )
                messages.success(request, f"Topic {key} created.")
                return redirect(topic_url(key))
        else:
            status = 400
    before, bad_cursor = page_param(request, "before")
    page = topic_page(before=before, size=TOPIC_PAGE)
    return render(
        request,
        "dashboard/topics/list.html",
        {
            "section": "topics",
            "page": page,
            "form": form,
            "bad_cursor": bad_cursor,
            "pager": pager(request, "before", page.next_before),
        },
        status=status,
    )


@admin_required
@require_http_methods(["GET", "POST"])
def topic_detail(request: HttpRequest, key: str) -> HttpResponse:
    """GET: the topic and its subscribers. POST: save its name and self-service switch."""
    topic = object_or_404(topic_selectors.topic_list(), key=key)
    form = TopicForm(
        request.POST or None,
        creating=False,
        initial={"name": topic.name, "self_service": topic.self_service},
    )
    status = 200
    if form.is_bound:
        if form.is_valid():
            topic_upsert(
                key=key,
                fields={
                    "name": form.cleaned_data["name"],
                    "self_service": form.cleaned_data["self_service"],
                },
            )
            messages.success(request, f"Topic {key} saved.")
            return redirect(topic_url(key))
        status = 400
    before, bad_cursor = page_param(request, "before")
    subscribers = subscriber_page(topic=topic, before=before, size=SUBSCRIBER_PAGE)
    return render(
        request,
        "dashboard/topics/detail.html",
        {
            "section": "topics",
            "topic": topic,
            "form": form,
            "subscribers": subscribers,
            "subscriber_form": SubscriberForm(initial={"action": "subscribe"}),
            "bad_cursor": bad_cursor,
            "pager": pager(request, "before", subscribers.next_before),
        },
        status=status,
    )


@admin_required
@require_POST
def topic_delete_view(request: HttpRequest, key: str) -> HttpResponse:
    topic = object_or_404(Topic.objects.all(), key=key)
    cancelled = topic_delete(topic=topic)
    note = f" {cancelled} scheduled send(s) that named only it were cancelled." if cancelled else ""
    messages.success(request, f"Topic {key} deleted.{note}")
    return redirect("/dashboard/topics/")


@admin_required
@require_POST
def topic_subscribers_view(request: HttpRequest, key: str) -> HttpResponse:
    """Subscribe or unsubscribe one user; back to the user's page when ``back=user``, else to
    the topic's. Subscribing an unknown user id creates the user, as the API does."""
    return _subscription_change(request, object_or_404(Topic.objects.all(), key=key))


@admin_required
@require_POST
def topic_picked_subscribe(request: HttpRequest) -> HttpResponse:
    """The user page's picker: ``topic_subscribers_view`` for the topic posted as ``topic``
    (its URL cannot name it: the form is written before the choice is made)."""
    key = request.POST.get("topic", "")
    return _subscription_change(request, object_or_404(Topic.objects.all(), key=key))


def _subscription_change(request: HttpRequest, topic: Topic) -> HttpResponse:
    key = topic.key
    form = SubscriberForm(request.POST)
    back_to_user = request.POST.get("back") == "user"
    if not form.is_valid():
        messages.error(request, "Give a user id of 1 to 255 characters.")
        return redirect(topic_url(key))
    external_id = form.cleaned_data["external_id"]
    if form.cleaned_data["action"] == "subscribe":
        added = topic_subscribe(topic=topic, users=[RecipientInput(external_id=external_id)])
        verb = "subscribed to" if added else "was already subscribed to"
        messages.success(request, f"{external_id} {verb} {key}.")
    else:
        user = object_or_404(EndUser.objects.all(), external_id=external_id)
        topic_unsubscribe(topic=topic, user=user)
        messages.success(request, f"{external_id} unsubscribed from {key}.")
    return redirect(user_url(external_id) if back_to_user else topic_url(key))
