"""A local Web Push service that is also the browser behind it, for push tests.

``push_service()`` runs a threaded HTTP server on 127.0.0.2 (a free port; allow it with
``WEBHOOK_ALLOWED_CIDRS=127.0.0.2/32`` in the settings and in a worker's environment). A test
makes a ``Browser`` (a P-256 key pair and a 16-byte auth secret, as a browser does), subscribes
it through the API with ``service.subscription(browser)``, and then reads what the server
received: each request to ``/push/<token>`` is checked as a push service checks it (the VAPID
``Authorization: vapid t=<JWT>, k=<key>`` header: an ES256 signature by ``k``, ``aud`` the
endpoint's origin, ``exp`` in the future and at most 24 hours away) and decrypted as the browser
would (RFC 8291, ``aes128gcm``). Each token answers its script (``script(token, 500, 201)``),
201 once the script is used up.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

HOST = "127.0.0.2"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Browser:
    """A browser's side of a subscription: its key pair and authentication secret."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: uuid.uuid4().bytes)  # 16 random bytes
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )


@dataclass
class Push:
    """One request the service received, verified and decrypted (or why not: ``problem``)."""

    token: str
    status: int  # what the service answered
    headers: dict[str, str]
    claims: dict[str, Any] | None = None
    vapid_key: str | None = None  # the k= of the Authorization header
    payload: Any = None  # the decrypted JSON
    problem: str | None = None


def verify_vapid(authorization: str, *, audience: str) -> tuple[dict[str, Any], str]:
    """The claims and public key of a valid RFC 8292 header; raises ValueError otherwise."""
    scheme, _, params = authorization.partition(" ")
    if scheme.lower() != "vapid":
        raise ValueError(f"not a vapid Authorization: {authorization!r}")
    values = dict(part.strip().split("=", 1) for part in params.split(","))
    token, key = values["t"], values["k"]
    header_b64, claims_b64, signature_b64 = token.split(".")
    header = json.loads(unb64url(header_b64))
    if header.get("alg") != "ES256":
        raise ValueError(f"JWT alg {header.get('alg')!r}, not ES256")
    signature = unb64url(signature_b64)
    if len(signature) != 64:
        raise ValueError("an ES256 signature is 64 bytes (r || s)")
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
    der = encode_dss_signature(
        int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    )
    try:
        public.verify(der, f"{header_b64}.{claims_b64}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise ValueError("the JWT's signature does not verify with k") from None
    claims = json.loads(unb64url(claims_b64))
    if claims.get("aud") != audience:
        raise ValueError(f"aud {claims.get('aud')!r}, not {audience!r}")
    if not time.time() < claims.get("exp", 0) <= time.time() + 24 * 3600:
        raise ValueError(f"exp {claims.get('exp')!r} is not within the next 24 hours")
    return claims, key


class PushService:
    def __init__(self) -> None:
        self._server = ThreadingHTTPServer((HOST, 0), _Handler)
        self._server.daemon_threads = True
        self._server.service = self  # type: ignore[attr-defined]
        self._browsers: dict[str, Browser] = {}
        self._scripts: dict[str, list[int]] = {}
        self._pushes: list[Push] = []
        self._lock = threading.Lock()

    @property
    def origin(self) -> str:
        return f"http://{HOST}:{self._server.server_address[1]}"

    def endpoint(self, browser: Browser) -> str:
        return f"{self.origin}/push/{browser.token}"

    def subscription(self, browser: Browser) -> dict[str, Any]:
        """The browser's ``PushSubscription.toJSON()`` for this service (and the service now
        knows the browser, to decrypt what it is sent)."""
        with self._lock:
            self._browsers[browser.token] = browser
        return {
            "endpoint": self.endpoint(browser),
            "expirationTime": None,
            "keys": {"p256dh": browser.p256dh, "auth": b64url(browser.auth)},
        }

    def script(self, browser: Browser, *statuses: int) -> None:
        """The answers to the browser's next requests, in order (then 201)."""
        with self._lock:
            self._scripts[browser.token] = list(statuses)

    def received(self, browser: Browser | None = None) -> list[Push]:
        with self._lock:
            return [p for p in self._pushes if browser is None or p.token == browser.token]

    # --- the server's side ---

    def _answer(self, token: str, headers: dict[str, str], body: bytes) -> Push:
        with self._lock:
            browser = self._browsers.get(token)
            script = self._scripts.get(token, [])
            status = script.pop(0) if script else 201
        push = Push(token=token, status=status, headers=headers)
        try:
            if browser is None:
                raise ValueError(f"no browser subscribed with token {token}")
            push.claims, push.vapid_key = verify_vapid(
                headers.get("authorization", ""), audience=self.origin
            )
            if headers.get("content-encoding") != "aes128gcm":
                raise ValueError(f"Content-Encoding {headers.get('content-encoding')!r}")
            if len(body) > 4096:
                raise ValueError(f"{len(body)} bytes of body, more than 4096")
            plain = http_ece.decrypt(
                body,
                private_key=browser.private_key,
                auth_secret=browser.auth,
                version="aes128gcm",
            )
            push.payload = json.loads(plain)
        except (ValueError, KeyError, http_ece.ECEException) as exc:
            push.problem = f"{type(exc).__name__}: {exc}"
            push.status = 400
        with self._lock:
            self._pushes.append(push)
        return push


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- the base class's name
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        service: PushService = self.server.service  # type: ignore[attr-defined]
        if not self.path.startswith("/push/"):
            status = 404
        else:
            status = service._answer(self.path.removeprefix("/push/"), headers, body).status
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def push_service() -> Iterator[PushService]:
    service = PushService()
    thread = threading.Thread(target=service._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        service._server.shutdown()
        service._server.server_close()
