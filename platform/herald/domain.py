"""The errors services raise: what went wrong, in the domain's words, never how HTTP says it.

Services (``notifications.services``, ``tenants.services``, ``billing_stub``) raise these and
never import DRF. Each kind carries the contract's error ``code`` ("Errors" in the API
contract); two places translate them for people: ``herald.errors`` for the API (the code's
status and the contract's JSON body) and ``dashboard.refusals`` for the dashboard's forms and
messages.

``details``, when given, is JSON: for ``Invalid`` and its kinds it names the refused fields
(``{"recipients": ["..."]}``), as the API's 400 answers do.
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    """A refusal a caller can act on. Subclass it; raise the subclass that says why."""

    code: ClassVar[str] = "invalid"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Invalid(DomainError):
    """The request cannot be carried out as given; ``details`` name the fields."""

    code = "invalid"


class LimitExceeded(Invalid):
    """The request asks for more than the tenant's plan allows at once (e.g. recipients)."""


class NotAllowed(DomainError):
    """The caller may not do this."""

    code = "forbidden"


class NotInPlan(NotAllowed):
    """A feature the tenant's plan does not include (e.g. digests)."""


class NotFound(DomainError):
    """No such object, or not the caller's: the same answer for both."""

    code = "not_found"


class Conflict(DomainError):
    """The object's state, or an earlier request, rules this out."""

    code = "conflict"


class OverQuota(DomainError):
    """The tenant's usage quota for the period would be passed; ``details`` say by how much."""

    code = "quota_exceeded"
