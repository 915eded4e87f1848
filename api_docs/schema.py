"""drf-spectacular wiring: Herald's security schemes, and per-endpoint credentials in the schema.

Every API view runs all three authenticators, so a credential of the wrong kind is recognised and
refused with 403 (as the contract says) rather than 401. The schema, though, lists for each
operation only the credentials its permission class accepts.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiExample, OpenApiResponse

from api_docs import docs
from herald.fields import StrictSerializer, blank_or
from tenants.permissions import IsAdmin, IsAnyCaller, IsEndUser, IsServer

_ACCEPTED_SCHEMES: dict[type, set[str]] = {
    IsServer: {"ApiKey", "AdminToken"},
    IsAdmin: {"AdminToken"},
    IsEndUser: {"EndUserToken"},
    IsAnyCaller: {"ApiKey", "AdminToken", "EndUserToken"},
}


_ERROR_DESCRIPTIONS = {
    "400": "Invalid input: nothing was written; `details` names the fields.",
    "401": "Missing, unknown, revoked or expired credential, or one of another tenant.",
    "403": "A credential of the wrong kind for this endpoint.",
    "404": "No such object (or not yours: the answer is the same).",
    "409": "Conflicts with the current state (see the message).",
    "429": "Rate limited: retry after `Retry-After` seconds.",
}
CONFLICT_OPERATIONS = {
    "notifications_send",
    "sends_cancel",
    "webhook_endpoints_test",
    "webhook_deliveries_retry",
}
_PLATFORM_HOST_ONLY = "Sign-up is on the platform host; a tenant host has no such resource."
# Operations without a credential that still answer these, with what they mean there.
_EXTRA_ERRORS = {
    "auth_token": {"401": "Wrong email or password."},
    "auth_refresh": {
        "401": "The refresh token is invalid, expired or another tenant's, or its admin is gone."
    },
    "signup": {"404": _PLATFORM_HOST_ONLY},
    "signup_slug_check": {"404": _PLATFORM_HOST_ONLY},
    "notifications_send": {"404": "The send names a topic that does not exist (`details.topic`)."},
}


class HeraldAutoSchema(AutoSchema):
    def _error_codes(self) -> dict[str, str]:
        """Each error status the operation can answer, with its description."""
        codes = ["400"] if self.method in ("POST", "PUT", "PATCH", "GET") else []
        if self.get_auth():
            codes += ["401", "403"]
        if "{" in self.path:
            codes.append("404")
        if self.get_operation_id() in CONFLICT_OPERATIONS:
            codes.append("409")
        described = {code: _ERROR_DESCRIPTIONS[code] for code in [*codes, "429"]}
        described.update(_EXTRA_ERRORS.get(self.get_operation_id(), {}))
        return dict(sorted(described.items()))

    def _map_serializer(
        self, serializer: Any, direction: Any, bypass_extensions: bool = False
    ) -> dict[str, Any]:
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        # The API refuses body fields it does not know (``StrictSerializer``); say so.
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
            # Read-only fields a body may carry back from a GET (and that are then ignored).
            for name in getattr(serializer, "echoed_read_only", ()):
                schema["properties"][name]["readOnly"] = True
            # At least one of these fields (e.g. a send's recipients or topic).
            if alternatives := getattr(serializer, "required_any_of", ()):
                schema["anyOf"] = [{"required": [name]} for name in alternatives]
        return schema

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_codes().items():
            example = OpenApiExample(code, value={"error": docs.ERROR_EXAMPLES[code]})
            responses.setdefault(
                code,
                self._get_response_for_code(
                    OpenApiResponse(
                        response=docs.ERROR,
                        description=description,
                        examples=[example],
                    ),
                    code,
                    direction=direction,
                ),
            )
        return responses

    def get_auth(self) -> list[dict[str, list[Any]]]:
        requirements = super().get_auth()  # also registers the security schemes
        accepted: set[str] = set()
        for permission in self.view.get_permissions():
            accepted |= _ACCEPTED_SCHEMES.get(type(permission), set())
        return [req for req in requirements if set(req) & accepted]


class _Bearer(OpenApiAuthenticationExtension):
    bearer_format = "JWT"
    description = ""

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": self.bearer_format,
            "description": self.description,
        }


class ApiKeyScheme(_Bearer):
    target_class = "tenants.authentication.ApiKeyAuthentication"
    name = "ApiKey"
    bearer_format = "sk_..."
    description = "A secret API key of the tenant, for customer backends: `Bearer sk_...`."


class AdminTokenScheme(_Bearer):
    target_class = "tenants.authentication.AdminTokenAuthentication"
    name = "AdminToken"
    description = "An admin access token from `POST /api/v1/auth/token` on the tenant host."


class EndUserTokenScheme(_Bearer):
    target_class = "tenants.authentication.EndUserTokenAuthentication"
    name = "EndUserToken"
    description = "An end user's token from `POST /api/v1/users/{id}/token` (short-lived)."


class PatternFieldSchema(OpenApiSerializerFieldExtension):
    """A ``PatternField`` documents the pattern it enforces (and "" when it allows blank)."""

    target_class = "herald.fields.PatternField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        field = self.target
        schema = auto_schema._map_serializer_field(field, direction, bypass_extensions=True)
        schema["pattern"] = field.pattern
        if field.max_length is not None:
            schema["maxLength"] = field.max_length
        if field.allow_blank:
            read_only = schema.pop("readOnly", None)
            schema = blank_or(schema)
            if read_only:
                schema["readOnly"] = True
        return schema
