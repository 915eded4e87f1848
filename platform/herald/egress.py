"""Outbound requests to addresses a tenant chose (webhook endpoints, push services), without
server-side request forgery.

One rule, ``address_refusal``, decides which addresses Herald may reach: public unicast only,
unless inside ``WEBHOOK_ALLOWED_CIDRS``. It is applied twice:

- on save, ``url_refusal(url)`` resolves the URL's host (every address ``getaddrinfo`` gives)
  and returns a message for the user when any address is refused;
- on sending, ``post(url, ...)`` resolves the host once, checks every address again and
  connects to a checked address itself, so a DNS answer that changed since the save (DNS
  rebinding) cannot lead anywhere else. TLS is verified against the URL's host name (SNI and
  certificate), the ``Host`` header is the URL's, redirects are never followed, the whole
  exchange has one deadline and at most ``BODY_CAP`` bytes of the answer are read.

``post`` is built on the standard library's ``http.client`` rather than urllib3 or requests:
connecting to a pinned address with another name for TLS takes one overridden ``connect``
there, and the hard total deadline needs the socket itself (urllib3's timeouts bound each
socket operation, not the exchange, so a server dribbling a byte at a time could hold a
worker far longer). Numeric host forms (``2130706433``, ``0x7f.1``, ``0177.0.0.1``,
``127.1``) are read the way the C resolver reads them (``inet_aton``), before any lookup.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import SplitResult, urlsplit

from django.conf import settings

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# How much of an answer's body is read and kept (for the delivery log); the rest is never read.
BODY_CAP = 4096
MAX_TIMEOUT = 15.0

# Not reachable for a tenant though ``is_global`` may say otherwise on some Python versions,
# or ranges whose embedded IPv4 address is checked separately below.
_REFUSED_NETWORKS: tuple[Network, ...] = tuple(
    ipaddress.ip_network(cidr)
    for cidr in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        "240.0.0.0/4",  # reserved, and the broadcast address
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001:db8::/32",  # documentation
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still routed by some stacks)
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

ErrorKind = Literal["refused", "timeout", "connection", "tls", "protocol"]


class EgressError(Exception):
    """A request did not get an answer. ``kind``: ``refused`` (the URL or an address it resolves
    to is not allowed; permanent until the URL changes), ``timeout`` (the deadline passed),
    ``connection`` (refused, reset, unreachable, or the name no longer resolves), ``tls``
    (handshake or certificate), ``protocol`` (not an HTTP answer)."""

    def __init__(self, message: str, *, kind: ErrorKind) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind

    @property
    def permanent(self) -> bool:
        return self.kind == "refused"


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names lower-cased; a repeated header keeps its last value
    body_excerpt: bytes  # at most BODY_CAP bytes
    elapsed: float  # seconds, from the lookup to the excerpt read


def allowed_networks() -> tuple[Network, ...]:
    """``WEBHOOK_ALLOWED_CIDRS`` as parsed at startup."""
    return tuple(getattr(settings, "WEBHOOK_ALLOWED_CIDRS", ()))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for: mapped, compatible, NAT64, 6to4 or Teredo."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # ::a.b.c.d, IPv4-compatible
        return ipaddress.IPv4Address(int(address))
    return None


def address_refusal(address: Address, allowed: Iterable[Network] = ()) -> str | None:
    """Why Herald may not connect to ``address``, or None when it may."""
    allowed = tuple(allowed)
    if any(address in network for network in allowed):
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return f"{address} is a scoped (link-local) address."
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_refusal(embedded, allowed)
            if reason is not None:
                return f"{address} embeds {embedded}: {reason}"
            if address.ipv4_mapped is not None or int(address) >> 32 == 0:
                return None  # the IPv4 address itself is what the stack connects to
    if (
        not address.is_global
        or address.is_multicast
        or address.is_unspecified
        or address.is_reserved
        or any(address in network for network in _REFUSED_NETWORKS)
    ):
        return f"{address} is not a public address."
    return None


def _numeric_host(host: str) -> Address | None:
    """The address a numeric host stands for, read as the C resolver does (``127.1``,
    ``0x7f.1``, ``0177.0.0.1``, ``2130706433`` are all 127.0.0.1); None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and host[0].isdigit():
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclass(frozen=True)
class _Target:
    parts: SplitResult
    host: str
    port: int
    addresses: tuple[Address, ...]


def _resolve(url: str, allowed: tuple[Network, ...]) -> _Target:
    """Parse ``url``, resolve its host once and check every address; raises ``EgressError``
    (``refused``) with a message for the user."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise EgressError(f"The URL is malformed: {exc}.", kind="refused") from exc
    if parts.scheme not in ("https", "http"):
        raise EgressError("The URL must start with https://.", kind="refused")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise EgressError("The URL may not contain a user name or password.", kind="refused")
    target = parts.path + parts.query
    if not target.isascii() or any(c <= " " or c == "\x7f" for c in target):
        raise EgressError(
            "The URL's path may hold only printable ASCII (percent-encode the rest).",
            kind="refused",
        )
    host = parts.hostname or ""
    if not host:
        raise EgressError("The URL has no host.", kind="refused")
    port = port or (443 if parts.scheme == "https" else 80)

    numeric = _numeric_host(host)
    if numeric is not None:
        addresses: tuple[Address, ...] = (numeric,)
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise EgressError(f"The host {host!r} does not resolve.", kind="refused") from exc
        found: list[Address] = []
        for _family, _type, _proto, _name, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            if isinstance(address, ipaddress.IPv6Address) and len(sockaddr) > 3 and sockaddr[3]:
                address = ipaddress.IPv6Address(f"{address}%{sockaddr[3]}")
            if address not in found:
                found.append(address)
        if not found:
            raise EgressError(f"The host {host!r} does not resolve.", kind="refused")
        addresses = tuple(found)

    for address in addresses:
        reason = address_refusal(address, allowed)
        if reason is not None:
            raise EgressError(f"The host {host!r} is not allowed: {reason}", kind="refused")
    if parts.scheme == "http" and not all(
        any(address in network for network in allowed) for address in addresses
    ):
        raise EgressError("The URL must start with https://.", kind="refused")
    return _Target(parts=parts, host=host, port=port, addresses=addresses)


def url_refusal(url: str, *, allowed: Sequence[Network] | None = None) -> str | None:
    """Why ``url`` may not be saved as a webhook endpoint or push endpoint, or None when it may.
    Resolves the host (a network lookup). ``allowed``: defaults to ``WEBHOOK_ALLOWED_CIDRS``."""
    try:
        _resolve(url, tuple(allowed) if allowed is not None else allowed_networks())
    except EgressError as exc:
        return exc.message
    return None


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to ``address`` that speaks to the server as ``host``."""

    def __init__(
        self,
        host: str,
        port: int,
        address: Address,
        *,
        tls: ssl.SSLContext | None,
        timeout: float,
    ) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address
        self.tls = tls
        if tls:
            self.default_port = 443

    def connect(self) -> None:
        # Straight to the checked address: create_connection would resolve the host again.
        if isinstance(self.address, ipaddress.IPv6Address):
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        else:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect((str(self.address), self.port))
        except BaseException:
            sock.close()
            raise
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        self.sock = sock


def _shut(connection: _PinnedConnection, fired: threading.Event) -> None:
    fired.set()
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    timeout: float,
    *,
    allowed: Sequence[Network] | None = None,
    ssl_context: ssl.SSLContext | None = None,
) -> Response:
    """POST ``body`` to ``url`` and return the answer, whatever its status (redirects are
    answers too, never followed). ``timeout`` (at most ``MAX_TIMEOUT`` seconds) bounds the
    whole exchange. Raises ``EgressError``; ``allowed`` defaults to ``WEBHOOK_ALLOWED_CIDRS``;
    ``ssl_context`` to the system's trusted CAs with host name checks (a custom one must keep
    ``check_hostname``)."""
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValueError(f"timeout must be in (0, {MAX_TIMEOUT}] seconds, not {timeout!r}.")
    started = time.monotonic()
    deadline = started + timeout
    target = _resolve(url, tuple(allowed) if allowed is not None else allowed_networks())
    path = target.parts.path or "/"
    if target.parts.query:
        path = f"{path}?{target.parts.query}"

    last_error: EgressError | None = None
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        connection = _PinnedConnection(
            target.host,
            target.port,
            address,
            tls=(ssl_context or ssl.create_default_context())
            if target.parts.scheme == "https"
            else None,
            timeout=remaining,
        )
        try:
            connection.connect()
        except TimeoutError as exc:
            raise EgressError(f"Timed out connecting to {address}.", kind="timeout") from exc
        except ssl.SSLError as exc:
            connection.close()
            raise EgressError(f"TLS failed with {target.host}: {exc}", kind="tls") from exc
        except OSError as exc:
            connection.close()
            last_error = EgressError(f"Cannot connect to {address}: {exc}", kind="connection")
            continue
        return _exchange(connection, path, body, headers, started, deadline)
    if last_error is not None:
        raise last_error
    raise EgressError(f"Timed out connecting to {target.host}.", kind="timeout")


def _exchange(
    connection: _PinnedConnection,
    path: str,
    body: bytes,
    headers: Mapping[str, str],
    started: float,
    deadline: float,
) -> Response:
    # The socket timeout bounds each read; the watchdog bounds them all together.
    fired = threading.Event()
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0), _shut, (connection, fired))
    watchdog.daemon = True
    watchdog.start()
    try:
        request_headers = {name: value for name, value in headers.items() if name.lower() != "host"}
        request_headers.setdefault("Connection", "close")
        connection.request("POST", path, body=body, headers=request_headers)
        answer = connection.getresponse()
        excerpt = answer.read(BODY_CAP)
        return Response(
            status=answer.status,
            headers={name.lower(): value for name, value in answer.getheaders()},
            body_excerpt=excerpt,
            elapsed=time.monotonic() - started,
        )
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        if fired.is_set() or isinstance(exc, TimeoutError):
            raise EgressError("Timed out waiting for the answer.", kind="timeout") from exc
        if isinstance(exc, ssl.SSLError):
            raise EgressError(f"TLS failed: {exc}", kind="tls") from exc
        if isinstance(exc, OSError):
            raise EgressError(f"The connection failed: {exc}", kind="connection") from exc
        raise EgressError(f"Not an HTTP answer: {exc!r}", kind="protocol") from exc
    finally:
        watchdog.cancel()
        connection.close()


@dataclass(frozen=True)
class SessionResponse:
    """The parts of a ``requests.Response`` that pywebpush and its callers read."""

    status_code: int
    reason: str
    headers: dict[str, str]
    content: bytes  # at most BODY_CAP bytes
    elapsed: float

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class GuardedSession:
    """A stand-in for ``requests.Session`` whose ``post`` goes through ``post`` above, for
    libraries that take a session (pywebpush's ``webpush(..., requests_session=...)`` calls
    ``session.post(endpoint, data=..., headers=..., timeout=...)``). ``EgressError``
    propagates unchanged."""

    def __init__(
        self,
        *,
        timeout: float = MAX_TIMEOUT,
        allowed: Sequence[Network] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.allowed = allowed
        self.ssl_context = ssl_context

    def post(
        self,
        url: str,
        data: bytes | str | None = None,
        headers: Mapping[str, object] | None = None,
        timeout: float | None = None,
        **unsupported: object,
    ) -> SessionResponse:
        if unsupported:
            raise TypeError(f"GuardedSession.post() does not take {sorted(unsupported)}.")
        body = data.encode() if isinstance(data, str) else (data or b"")
        answer = post(
            url,
            body,
            {name: str(value) for name, value in (headers or {}).items()},
            min(timeout or self.timeout, self.timeout),
            allowed=self.allowed,
            ssl_context=self.ssl_context,
        )
        return SessionResponse(
            status_code=answer.status,
            reason=http.client.responses.get(answer.status, ""),
            headers=answer.headers,
            content=answer.body_excerpt,
            elapsed=answer.elapsed,
        )
