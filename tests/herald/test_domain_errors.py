"""Services raise ``herald.domain`` errors and never import DRF; one handler gives each kind the
contract's status and body."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from herald import domain
from herald.errors import exception_handler, http_status

ROOT = Path(__file__).resolve().parents[2]
# The write layer: what must stay free of HTTP (views, serializers and tasks may use it).
SERVICES = [
    *sorted((ROOT / "notifications" / "services").glob("*.py")),
    ROOT / "tenants" / "services.py",
    *[ROOT / "billing_stub" / f"{name}.py" for name in ("limits", "metering", "rates")],
    ROOT / "dashboard" / "services_content.py",
]


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        (domain.Invalid, 400, "invalid"),
        (domain.LimitExceeded, 400, "invalid"),
        (domain.NotAllowed, 403, "forbidden"),
        (domain.NotInPlan, 403, "forbidden"),
        (domain.NotFound, 404, "not_found"),
        (domain.Conflict, 409, "conflict"),
        (domain.OverQuota, 429, "quota_exceeded"),
    ],
)
def test_each_kind_gets_the_contract_status_and_body(kind, status, code):
    error = kind("Nope.", details={"field": ["Why."]})
    response = exception_handler(error, {})
    assert (response.status_code, http_status(error)) == (status, status)
    assert response.data == {
        "error": {"code": code, "message": "Nope.", "details": {"field": ["Why."]}}
    }
    bare = exception_handler(kind("Nope."), {})
    assert bare.data == {"error": {"code": code, "message": "Nope."}}


@pytest.mark.parametrize("path", SERVICES, ids=lambda p: str(p.relative_to(ROOT)))
def test_services_never_import_http(path):
    imported = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
        elif isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
    http = {m for m in imported if m.split(".")[0] in {"rest_framework", "drf_spectacular"}}
    assert not http | ({"herald.errors"} & imported), path


def test_a_provisioning_refusal_is_an_invalid_request_naming_its_fields():
    from tenants.services import ProvisioningError

    error = ProvisioningError({"slug": ["'acme' is already taken."]})
    assert isinstance(error, domain.Invalid)
    assert str(error) == "slug: 'acme' is already taken."  # the command line's wording
    assert exception_handler(error, {}).data == {
        "error": {
            "code": "invalid",
            "message": "The request is invalid; see details.",
            "details": {"slug": ["'acme' is already taken."]},
        }
    }
