"""Which web origins may use a tenant's API and WebSocket: one rule, for CORS and the socket.

An origin (``scheme://host[:port]``, as browsers send it in ``Origin``) is allowed when it is one
of the tenant's ``allowed_origins`` (compared without case and trailing slash), or, where the
caller knows the request's ``Host`` header, when it is the page's own host: a page served on
``demo.localhost:8000`` sends ``Origin: http://demo.localhost:8000``; default ports may be written
or left out.
"""

from __future__ import annotations

from tenants.models import Tenant

_DEFAULT_PORTS = {"http": ":80", "https": ":443"}


def normalize_origin(origin: str) -> str:
    """``HTTPS://Shop.Example/`` -> ``https://shop.example``."""
    return origin.strip().lower().rstrip("/")


def origin_allowed(origin: str, tenant: Tenant, *, host: str = "") -> bool:
    """Whether ``origin`` may call ``tenant`` (see the module docstring); ``host``: the request's
    Host header, port included, when a same-host page counts as allowed."""
    origin = normalize_origin(origin)
    if host:
        scheme, _, netloc = origin.partition("://")
        default = _DEFAULT_PORTS.get(scheme, "")
        if netloc.removesuffix(default) == host.lower().removesuffix(default):
            return True
    return origin in tenant.allowed_origins
