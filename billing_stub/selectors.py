from __future__ import annotations

from billing_stub.models import Plan

DEFAULT_PLAN_CODE = "free"


def plan_get(*, code: str) -> Plan | None:
    return Plan.objects.filter(code=code).first()
