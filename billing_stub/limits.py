"""A tenant's effective limits: its plan's, with its own overrides on top.

``Tenant.limit_overrides`` maps any of ``LIMIT_FIELDS`` to a value (for a customer on a custom
deal); everything else comes from the plan. Every check reads limits through ``limits_for``,
and both plan and overrides travel with the tenant in the registry cache, which any change to
either clears, so a change applies at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from billing_stub.models import LIMIT_FIELDS


@dataclass(frozen=True)
class Limits:
    plan: str
    monthly_notification_quota: int
    monthly_email_quota: int
    api_requests_per_second: int
    api_burst: int
    websocket_connection_limit: int
    max_recipients_per_send: int
    digest_allowed: bool
    email_send_rate_per_second: int
    max_webhook_endpoints: int
    monthly_webhook_quota: int


def limits_for(tenant: Any) -> Limits:
    overrides = tenant.limit_overrides or {}
    values = {name: overrides.get(name, getattr(tenant.plan, name)) for name in LIMIT_FIELDS}
    return Limits(plan=tenant.plan.code, **values)


def override_errors(overrides: Any) -> list[str]:
    """What is wrong with a ``limit_overrides`` value ([] when it is valid)."""
    if not isinstance(overrides, dict):
        return ["Overrides are an object of limit names to values."]
    errors = []
    for name, value in overrides.items():
        if name not in LIMIT_FIELDS:
            errors.append(f"Unknown limit {name!r}; one of: {', '.join(LIMIT_FIELDS)}.")
        elif name == "digest_allowed":
            if not isinstance(value, bool):
                errors.append("digest_allowed is true or false.")
        elif not (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            errors.append(f"{name} is a whole number, 0 or more.")
    return errors
