"""Signing in and out of a tenant's dashboard (session login, on the tenant's host only)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render

from dashboard.access import dashboard_tenant
from herald.ratelimits import measure


class LoginView(auth_views.LoginView):
    """Django's login view, bound to the host's tenant and limited per client IP."""

    template_name = "dashboard/login.html"
    redirect_authenticated_user = True

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        dashboard_tenant(request)
        if request.method == "POST":
            usage = measure(request, scope="login")
            if usage is not None and usage.limited:
                response = render(
                    request,
                    "dashboard/login.html",
                    {"form": self.get_form_class()(request), "rate_limited": True},
                    status=429,
                )
                response["Retry-After"] = str(usage.reset)
                return response
        return super().dispatch(request, *args, **kwargs)


class LogoutView(auth_views.LogoutView):
    """POST only (Django's default): a link or image elsewhere cannot sign an admin out."""

    next_page = "dashboard:login"
