"""POST /api/v1/notifications: validate, upsert recipients, fan out in-app rows, idempotently."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context
from rest_framework.exceptions import ValidationError
from rest_framework.test import APIClient

from notifications.models import EndUser, Notification, NotificationType, Send
from notifications.serializers import RecipientsField, _email_valid
from notifications.services.users import (
    HOLD_FROM,
    RecipientColumns,
    RecipientInput,
    external_ids,
    recipient_columns,
)
from tests.support.api import Caller, error_code
from tests.support.processes import run_concurrently

SEND = {"type": "comment", "recipients": ["user-1"], "title": "Hi", "message": "New comment"}


def counts() -> tuple[int, int, int, int]:
    return (
        Send.objects.count(),
        Notification.objects.count(),
        EndUser.objects.count(),
        NotificationType.objects.count(),
    )


def in_schema(caller_world_tenant):
    return schema_context(caller_world_tenant.schema_name)


class TestAccepted:
    def test_send_to_one_user(self, alice_key, world):
        response = alice_key.post("/api/v1/notifications", SEND)
        assert response.status_code == 202
        body = response.json()
        assert body == {"id": body["id"], "recipients": 1, "status": "accepted"}
        with in_schema(world.tenant_a):
            notification = Notification.objects.get(send_id=body["id"])
            assert notification.recipient.external_id == "user-1"
            assert (notification.title, notification.message) == ("Hi", "New comment")
            assert notification.read_at is None

    def test_unknown_recipients_and_type_are_created(self, alice_key, world):
        response = alice_key.post(
            "/api/v1/notifications",
            {
                "type": "invoice.paid",
                "recipients": ["new-1", {"id": "new-2", "email": "n2@example.com", "name": "N2"}],
                "message": "Paid",
            },
        )
        assert response.status_code == 202
        with in_schema(world.tenant_a):
            assert EndUser.objects.get(external_id="new-2").email == "n2@example.com"
            assert EndUser.objects.filter(external_id="new-1").exists()
            created_type = NotificationType.objects.get(key="invoice.paid")
            assert created_type.channels == ["in_app"]
            assert Notification.objects.filter(send_id=response.json()["id"]).count() == 2

    def test_given_details_update_existing_users_and_missing_ones_keep_them(self, alice_key, world):
        alice_key.put("/api/v1/users/u-9", {"email": "old@example.com", "name": "Old"})
        alice_key.post(
            "/api/v1/notifications",
            {**SEND, "recipients": [{"id": "u-9", "name": "New"}, "user-1"]},
        )
        user = alice_key.get("/api/v1/users/u-9").json()
        assert (user["email"], user["name"]) == ("old@example.com", "New")

    def test_repeated_plain_ids_get_one_notification_each_in_first_order(self, alice_key, world):
        response = alice_key.post(
            "/api/v1/notifications",
            {**SEND, "recipients": ["plain-2", "plain-1", "plain-2", "plain-1", "plain-3"]},
        )
        assert response.json()["recipients"] == 3
        with in_schema(world.tenant_a):
            rows = Notification.objects.filter(send_id=response.json()["id"]).order_by("id")
            assert [n.recipient.external_id for n in rows] == ["plain-2", "plain-1", "plain-3"]

    def test_duplicate_recipients_get_one_notification(self, alice_key, world):
        response = alice_key.post(
            "/api/v1/notifications", {**SEND, "recipients": ["user-1", "user-1", {"id": "user-1"}]}
        )
        assert response.json()["recipients"] == 1
        with in_schema(world.tenant_a):
            assert Notification.objects.filter(send_id=response.json()["id"]).count() == 1

    def test_a_repeated_recipients_details_merge_from_every_entry(self, alice_key, world):
        response = alice_key.post(
            "/api/v1/notifications",
            {
                **SEND,
                "recipients": [
                    "merge-1",
                    "merge-2",
                    {"id": "merge-1", "name": "Dee"},
                    {"id": "merge-1", "email": "dee@example.com", "name": "Dee"},
                ],
            },
        )
        assert response.status_code == 202, response.content
        assert response.json()["recipients"] == 2
        with in_schema(world.tenant_a):
            user = EndUser.objects.get(external_id="merge-1")
            assert (user.name, user.email) == ("Dee", "dee@example.com")
            rows = Notification.objects.filter(send_id=response.json()["id"]).order_by("id")
            assert [n.recipient.external_id for n in rows] == ["merge-1", "merge-2"]

    def test_a_repeated_recipient_with_conflicting_details_is_refused(self, alice_key, world):
        with in_schema(world.tenant_a):
            before = counts()
        response = alice_key.post(
            "/api/v1/notifications",
            {
                **SEND,
                "recipients": [
                    {"id": "clash-1", "email": "a@example.com"},
                    "clash-2",
                    {"id": "clash-1", "email": "c@example.com"},
                ],
            },
        )
        assert response.status_code == 400, response.content
        details = response.json()["error"]["details"]["recipients"]
        assert details == {"2": ["Repeats recipient 'clash-1' with another email."]}
        with in_schema(world.tenant_a):
            assert counts() == before

    @pytest.mark.parametrize("size", [1, 10_000])
    def test_query_count_does_not_grow_with_recipients(
        self, alice_key, world, django_assert_num_queries, size
    ):
        alice_key.post("/api/v1/notifications", SEND)  # the type exists from here on
        alice_key.post("/api/v1/notifications", SEND)  # host and key come from the registry cache
        recipients = [f"bulk-{n}" for n in range(size)]
        # From HOLD_FROM recipients on, one statement more: the hold of the tenant's users
        # against erasure, instead of a row lock on each (``recipients_hold``).
        hold = 1 if size >= HOLD_FROM else 0
        # search_path, savepoint, whether a webhook endpoint takes notification.created, send
        # (with its type, response and usage record, and the users looked up), insert the new
        # ones (returning their ids), in-app rows (with the send's in-app count and webhook
        # events), release savepoint: the same for 1 or 10,000
        with django_assert_num_queries(7 + hold):
            response = alice_key.post("/api/v1/notifications", {**SEND, "recipients": recipients})
        assert response.status_code == 202, response.content
        assert response.json()["recipients"] == size
        # When every recipient exists, the statement that inserts the send also writes their
        # in-app rows: search_path, savepoint, webhook endpoints, send, release savepoint.
        with django_assert_num_queries(5 + hold):
            again = alice_key.post("/api/v1/notifications", {**SEND, "recipients": recipients})
        assert again.status_code == 202, again.content
        with in_schema(world.tenant_a):
            for sent in (response, again):
                assert Notification.objects.filter(send_id=sent.json()["id"]).count() == size

    def test_email_only_send_writes_no_in_app_rows(self, alice_key, world):
        response = alice_key.post("/api/v1/notifications", {**SEND, "channels": ["email"]})
        assert response.status_code == 202
        with in_schema(world.tenant_a):
            assert not Notification.objects.filter(send_id=response.json()["id"]).exists()


class TestPreferences:
    def test_user_who_turned_in_app_off_for_the_type_gets_no_row(self, alice_key, erin, world):
        alice_key.post("/api/v1/notifications", SEND)  # creates the type
        erin.put("/api/v1/me/preferences", {"types": {"comment": {"in_app": False}}})
        response = alice_key.post(
            "/api/v1/notifications", {**SEND, "recipients": ["user-1", "user-2"]}
        )
        with in_schema(world.tenant_a):
            rows = Notification.objects.filter(send_id=response.json()["id"])
            assert [n.recipient.external_id for n in rows] == ["user-2"]
        summary = alice_key.get(f"/api/v1/sends/{response.json()['id']}").json()["channels"]
        assert summary == {"in_app": {"sent": 1, "skipped_preference": 1}}

    def test_global_switch_off(self, alice_key, erin, world):
        erin.put("/api/v1/me/preferences", {"channels": {"in_app": False}})
        response = alice_key.post("/api/v1/notifications", SEND)
        with in_schema(world.tenant_a):
            assert not Notification.objects.filter(send_id=response.json()["id"]).exists()

    def test_critical_types_ignore_opt_outs(self, alice_key, erin, world):
        alice_key.put("/api/v1/types/security", {"critical": True})
        erin.put("/api/v1/me/preferences", {"channels": {"in_app": False}})
        erin.put("/api/v1/me/preferences", {"types": {"security": {"in_app": False}}})
        response = alice_key.post("/api/v1/notifications", {**SEND, "type": "security"})
        with in_schema(world.tenant_a):
            assert Notification.objects.filter(send_id=response.json()["id"]).count() == 1


class TestIdempotency:
    def test_same_key_and_body_returns_the_first_response_and_creates_nothing(
        self, alice_key, world
    ):
        first = alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="k-1")
        with in_schema(world.tenant_a):
            before = counts()
        again = alice_key.post(
            "/api/v1/notifications", dict(reversed(SEND.items())), HTTP_IDEMPOTENCY_KEY="k-1"
        )
        assert again.status_code == 202
        assert again.json() == first.json()
        with in_schema(world.tenant_a):
            assert counts() == before

    def test_same_key_other_body_is_409(self, alice_key, world):
        alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="k-2")
        response = alice_key.post(
            "/api/v1/notifications", {**SEND, "message": "changed"}, HTTP_IDEMPOTENCY_KEY="k-2"
        )
        assert response.status_code == 409
        assert error_code(response) == "conflict"

    def test_key_older_than_24_hours_can_be_reused(self, alice_key, world):
        first = alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="k-3")
        with in_schema(world.tenant_a):
            Send.objects.filter(pk=first.json()["id"]).update(
                created_at=timezone.now() - timedelta(hours=25)
            )
        again = alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="k-3")
        assert again.status_code == 202
        assert again.json()["id"] != first.json()["id"]

    def test_keys_are_per_tenant(self, alice_key, bob_key, world):
        a = alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="shared")
        b = bob_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="shared")
        assert a.status_code == b.status_code == 202
        with in_schema(world.tenant_b):
            assert Send.objects.filter(idempotency_key="shared").count() == 1

    def test_oversize_key_is_400(self, alice_key, world):
        response = alice_key.post("/api/v1/notifications", SEND, HTTP_IDEMPOTENCY_KEY="k" * 256)
        assert response.status_code == 400
        assert "Idempotency-Key" in response.json()["error"]["details"]

    def test_two_concurrent_requests_with_one_key_make_one_send(self, committed, world):
        """Real concurrency: two threads, two database connections, committed transactions."""
        caller = Caller(host=world.alice.host, token=world.alice.api_key)
        key = f"race-{timezone.now().timestamp()}"
        body = {**SEND, "recipients": [f"racer-{n}" for n in range(2000)]}
        responses = run_concurrently(
            lambda: caller.post("/api/v1/notifications", body, HTTP_IDEMPOTENCY_KEY=key)
        )
        try:
            assert [r.status_code for r in responses] == [202, 202]
            assert responses[0].json() == responses[1].json()
            with in_schema(world.tenant_a):
                assert Send.objects.filter(idempotency_key=key).count() == 1
                send_id = responses[0].json()["id"]
                assert Notification.objects.filter(send_id=send_id).count() == 2000
        finally:
            with in_schema(world.tenant_a):
                Send.objects.filter(idempotency_key=key).delete()
                EndUser.objects.filter(external_id__startswith="racer-").delete()
            connection.set_schema_to_public()


class TestBadInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({**SEND, "type": "Bad Type"}, "type"),
            ({**SEND, "type": 5}, "type"),
            ({**SEND, "recipients": []}, "recipients"),
            ({**SEND, "recipients": "user-1"}, "recipients"),
            ({**SEND, "recipients": [5]}, "recipients"),
            ({**SEND, "recipients": [{"email": "x@example.com"}]}, "recipients"),
            ({**SEND, "recipients": [{"id": "a", "email": "not-an-email"}]}, "recipients"),
            ({**SEND, "recipients": ["x" * 256]}, "recipients"),
            ({k: v for k, v in SEND.items() if k != "message"}, "message"),
            ({**SEND, "message": ["not", "text"]}, "message"),
            ({**SEND, "url": "javascript:alert(1)"}, "url"),
            ({**SEND, "data": [1, 2]}, "data"),
            ({**SEND, "data": {"k": "a\u0000b"}}, "data"),
            ({**SEND, "message": "a\u0000b"}, "message"),
            ({**SEND, "channels": ["sms"]}, "channels"),
            ({**SEND, "channels": []}, "channels"),
            ({**SEND, "send_at": "tomorrow"}, "send_at"),
            ({**SEND, "recipient": ["user-1"]}, "recipient"),
        ],
    )
    def test_rejected_whole_with_the_field_named(self, alice_key, world, body, field):
        with in_schema(world.tenant_a):
            before = counts()
        response = alice_key.post("/api/v1/notifications", body)
        assert response.status_code == 400, response.content
        assert error_code(response) == "invalid"
        assert field in response.json()["error"]["details"]
        with in_schema(world.tenant_a):
            assert counts() == before

    def test_more_than_ten_thousand_recipients(self, alice_key, world):
        response = alice_key.post(
            "/api/v1/notifications", {**SEND, "recipients": [f"u{n}" for n in range(10_001)]}
        )
        assert response.status_code == 400
        assert "recipients" in response.json()["error"]["details"]

    def test_plan_limit_on_recipients(self, bob_key, world):
        # Tenant B is on the free plan: at most 1,000 recipients per send.
        response = bob_key.post(
            "/api/v1/notifications", {**SEND, "recipients": [f"u{n}" for n in range(1001)]}
        )
        assert response.status_code == 400
        assert "1000" in response.json()["error"]["details"]["recipients"][0]

    def test_a_recipient_name_with_control_characters_is_400_naming_its_position(
        self, alice_key, world
    ):
        with in_schema(world.tenant_a):
            before = counts()
        recipients = [{"id": f"u{n}", "name": f"User {n}"} for n in range(10_000)]
        recipients[7_345]["name"] = "Bob\r\nBcc: v@evil.example"
        response = alice_key.post("/api/v1/notifications", {**SEND, "recipients": recipients})
        assert response.status_code == 400, response.content[:300]
        assert error_code(response) == "invalid"
        details = response.json()["error"]["details"]["recipients"]
        assert list(details) == ["7345"]
        assert "control characters" in details["7345"][0]
        with in_schema(world.tenant_a):
            assert counts() == before

    def test_ten_thousand_full_recipient_objects_fit_in_one_request(self, alice_key, world):
        recipients = [
            {"id": f"{n:0>200}", "email": f"user{n}@example.com", "name": "N" * 100}
            for n in range(10_000)
        ]
        response = alice_key.post("/api/v1/notifications", {**SEND, "recipients": recipients})
        assert response.status_code == 202, response.content[:300]

    @pytest.mark.parametrize(
        "raw",
        [
            r'{"type": "comment", "recipients": ["\ud800"], "message": "m"}',
            r'{"type": "comment", "recipients": [{"id": "a", "name": "\uDFFF"}], "message": "m"}',
            r'{"type": "comment", "recipients": ["user-1"], "message": "half \ud83d pair"}',
            r'{"type": "comment", "recipients": ["user-1"], "message": "m", "data": {"\ud800": 1}}',
        ],
    )
    def test_unpaired_surrogates_are_400_and_write_nothing(self, alice_key, world, raw):
        with in_schema(world.tenant_a):
            before = counts()
        response = APIClient().generic(
            "POST",
            "/api/v1/notifications",
            raw,
            content_type="application/json",
            HTTP_HOST=alice_key.host,
            HTTP_AUTHORIZATION=f"Bearer {alice_key.token}",
        )
        assert response.status_code == 400, response.content
        assert error_code(response) == "invalid"
        assert "surrogate" in response.json()["error"]["message"]
        with in_schema(world.tenant_a):
            assert counts() == before

    def test_an_escaped_surrogate_pair_is_one_character(self, alice_key, world):
        response = APIClient().generic(
            "POST",
            "/api/v1/notifications",
            r'{"type": "comment", "recipients": ["\ud83d\ude00"], "message": "\ud83d\ude00"}',
            content_type="application/json",
            HTTP_HOST=alice_key.host,
            HTTP_AUTHORIZATION=f"Bearer {alice_key.token}",
        )
        assert response.status_code == 202, response.content
        with in_schema(world.tenant_a):
            assert (
                Notification.objects.get(recipient__external_id="\U0001f600").message
                == "\U0001f600"
            )

    def test_body_that_is_not_an_object(self, alice_key, world):
        response = alice_key.post("/api/v1/notifications", [SEND])
        assert response.status_code == 400


class TestAccess:
    def test_end_user_token_is_403(self, erin, world):
        response = erin.post("/api/v1/notifications", SEND)
        assert response.status_code == 403
        assert error_code(response) == "forbidden"

    def test_admin_token_may_send(self, alice_admin, world):
        assert alice_admin.post("/api/v1/notifications", SEND).status_code == 202

    def test_tenant_b_key_sends_only_into_tenant_b(self, bob_key, world):
        response = bob_key.post("/api/v1/notifications", {**SEND, "recipients": ["only-in-b"]})
        assert response.status_code == 202
        with in_schema(world.tenant_a):
            assert not EndUser.objects.filter(external_id="only-in-b").exists()
        with in_schema(world.tenant_b):
            assert EndUser.objects.filter(external_id="only-in-b").exists()

    def test_no_credential_is_401(self, world, db):
        assert Caller(host=world.alice.host).post("/api/v1/notifications", SEND).status_code == 401


class TestScheduled:
    def test_future_send_holds_rows_until_released_and_can_be_cancelled(self, alice_key, world):
        from notifications.services.sending import sends_release_due

        later = (timezone.now() + timedelta(hours=1)).isoformat()
        held = alice_key.post("/api/v1/notifications", {**SEND, "send_at": later}).json()
        cancelled = alice_key.post("/api/v1/notifications", {**SEND, "send_at": later}).json()
        assert held["status"] == "scheduled"
        answer = alice_key.delete(f"/api/v1/sends/{cancelled['id']}").json()
        assert answer["status"] == "cancelled"
        assert answer["cancel_reason"] == "Cancelled on request before it was due."
        assert alice_key.delete(f"/api/v1/sends/{cancelled['id']}").status_code == 409
        with in_schema(world.tenant_a):
            assert not Notification.objects.filter(send_id=held["id"]).exists()
            later_still = timezone.now() + timedelta(hours=2)
            assert sends_release_due(tenant=world.tenant_a, now=later_still) == 1
            assert Notification.objects.filter(send_id=held["id"]).count() == 1
            assert not Notification.objects.filter(send_id=cancelled["id"]).exists()
        assert alice_key.get(f"/api/v1/sends/{held['id']}").json()["status"] == "accepted"


class TestRecipientColumns:
    """A send's recipients are kept as columns, read as ``RecipientInput``s."""

    def test_bare_ids_read_as_recipient_inputs(self):
        plain = RecipientColumns(["a", "b", "c"])
        assert len(plain) == 3
        assert list(plain) == [RecipientInput("a"), RecipientInput("b"), RecipientInput("c")]
        assert plain[1] == RecipientInput("b")
        assert plain[-1] == RecipientInput("c")
        assert plain[1:] == RecipientColumns(["b", "c"])
        assert plain == [RecipientInput("a"), RecipientInput("b"), RecipientInput("c")]
        assert sorted(plain, key=lambda r: r.external_id, reverse=True)[0] == RecipientInput("c")
        assert external_ids(plain) == ["a", "b", "c"]
        assert not plain.has_details

    def test_details_have_a_column_only_when_a_recipient_gives_them(self):
        given = [RecipientInput("a"), RecipientInput("b", name="B"), RecipientInput("c")]
        columns = recipient_columns(given)
        assert columns == RecipientColumns(["a", "b", "c"], names=[None, "B", None])
        assert columns.has_details
        assert list(columns) == given
        assert columns.take([2, 1]) == [RecipientInput("c"), RecipientInput("b", name="B")]
        assert not recipient_columns([RecipientInput("a"), RecipientInput("b")]).has_details
        assert recipient_columns([]) == RecipientColumns([])
        assert recipient_columns(columns) is columns

    @pytest.mark.parametrize(
        "address",
        ["a@b.co", "a@localhost", "a@[127.0.0.1]", "a@[::1]", "a@[300.0.0.1]", "a@-b.com",
         "a b@c.com", '"a b"@c.com', "a@b", "a@b.c", "\u00e4@b.com", "a@b\u00fc.com",
         "a@xn--bcher-kva.example", "", "@", "a@", "x" * 300 + "@b.com", "a@b.com\n",
         "a..b@c.com", ".a@b.com", "a@b@c.com", "a@b.com."],
    )  # fmt: skip
    def test_emails_are_checked_as_djangos_validator_checks_them(self, address):
        try:
            validate_email(address)
        except DjangoValidationError:
            valid = False
        else:
            valid = True
        assert _email_valid(address) is valid
        item = {"id": "a", "email": address}
        if valid and len(address) <= 254:  # Herald's limit (Django's is 320)
            assert RecipientsField().to_internal_value([item]).emails == [address]
        else:
            with pytest.raises(ValidationError) as refused:
                RecipientsField().to_internal_value([item])
            assert refused.value.detail == {0: ["'email' must be an email address."]}

    def test_the_field_gives_columns(self):
        plain = RecipientsField().to_internal_value(["a", "b"])
        assert plain == RecipientColumns(["a", "b"])
        assert not plain.has_details
        localised = RecipientsField().to_internal_value(["a", {"id": "b", "locale": "de_at"}])
        assert localised == RecipientColumns(["a", "b"], locales=[None, "de-AT"])
        mixed = RecipientsField().to_internal_value(["a", {"id": "b", "name": "B"}])
        assert mixed == RecipientColumns(["a", "b"], names=[None, "B"])
        assert mixed.has_details
        assert external_ids(mixed) == ["a", "b"]
        no_locale = RecipientsField().to_internal_value([{"id": "a", "locale": None}])
        assert not no_locale.has_details
