"""Who may see a dashboard page, in one place.

The dashboard lives on tenant hosts only. A page needs a session login of an admin of the host's
tenant: admins are rows of the tenant's own schema and sessions are stored there too, so a login
on tenant A's host means nothing on tenant B's. Objects are looked up inside the tenant's schema,
and "missing" and "not yours" give the same 404.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.views import redirect_to_login
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponse

from tenants.models import Tenant

M = TypeVar("M", bound=Model)
View = Callable[..., HttpResponse]


def dashboard_tenant(request: HttpRequest) -> Tenant:
    """The tenant whose host served this request; 404 on the platform host or with an API token."""
    tenant = getattr(request, "tenant", None)
    if tenant is None or getattr(request, "is_platform_host", False):
        raise Http404("The dashboard is on your tenant's host.")
    return tenant


def admin_required(view: View) -> View:
    """A page for the tenant's signed-in admins; anyone else goes to the login page."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        dashboard_tenant(request)
        if not request.user.is_authenticated or not request.user.is_active:
            return redirect_to_login(request.get_full_path())
        response = view(request, *args, **kwargs)
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    return wrapped


def object_or_404(queryset: QuerySet[M], **lookup: Any) -> M:
    """One object of the current tenant's schema, or the same 404 whether missing or not yours."""
    found = queryset.filter(**lookup).first()
    if found is None:
        raise Http404("Not found.")
    return found
