"""A strict Content-Security-Policy for the dashboard and sign-up pages.

Nothing inline: scripts and styles come from files on the same host, so an injected
``<script>`` or ``style=`` does nothing even if escaping ever failed. A view that must serve
other content (a rendered email preview in a sandboxed frame) sets its own policy, which wins.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' https: data:",
        "connect-src 'self' ws: wss:",
        "frame-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "object-src 'none'",
    ]
)
PAGES = ("/dashboard/", "/signup")


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(PAGES):
            response.headers.setdefault("Content-Security-Policy", POLICY)
        return response
