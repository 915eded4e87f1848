"""Outbound requests reach public addresses only (or WEBHOOK_ALLOWED_CIDRS), checked on save and
again on connecting, and a receiver cannot hold a worker past the deadline or make it read much.

Every socket here is on loopback: the receiver listens on 127.0.0.2, the only address allowed.
Name lookups that would leave the machine are replaced at the one seam, ``socket.getaddrinfo``.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from herald import egress
from herald.egress import EgressError, address_refusal, post, url_refusal

RECEIVER = "127.0.0.2"
ALLOWED = [ipaddress.ip_network("127.0.0.2/32")]


@pytest.fixture(autouse=True)
def _nothing_allowed_by_default(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = ()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/",
        "https://2130706433/",  # decimal
        "https://0x7f.1/",  # hex, short
        "https://0x7f000001/",
        "https://0177.0.0.1/",  # octal
        "https://127.1/",  # short
        "https://0/",
        "https://0.0.0.0/",
        "https://localhost/",
        "https://[::1]/",
        "https://[::]/",
        "https://[::ffff:127.0.0.1]/",  # IPv4-mapped
        "https://[::ffff:7f00:1]/",
        "https://[::ffff:10.0.0.1]/",
        "https://[::127.0.0.1]/",  # IPv4-compatible
        "https://[64:ff9b::a9fe:a9fe]/",  # NAT64 of 169.254.169.254
        "https://[64:ff9b:1::1]/",  # local-use NAT64
        "https://[2002:c0a8:0101::1]/",  # 6to4 of 192.168.1.1
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
        "https://[fd12:3456::1]/",  # unique local
        "https://[fe80::1]/",  # link-local
        "https://[fe80::1%25lo]/",
        "https://[fec0::1]/",  # site-local
        "https://[ff02::1]/",  # multicast
        "https://[2001:db8::1]/",  # documentation
        "https://10.1.2.3/",
        "https://172.16.0.1/",
        "https://192.168.0.1/",
        "https://100.64.0.1/",  # carrier-grade NAT
        "https://169.254.169.254/latest/meta-data/",  # cloud metadata
        "https://224.0.0.1/",
        "https://239.255.255.250/",
        "https://240.0.0.1/",
        "https://255.255.255.255/",
        "https://192.0.2.1/",
        "https://198.51.100.1/",
        "https://203.0.113.1/",
        "https://198.18.0.1/",
        "https://192.0.0.8/",
    ],
)
def test_internal_addresses_are_refused_in_every_spelling(url):
    assert url_refusal(url) is not None
    with pytest.raises(EgressError) as caught:
        post(url, b"{}", {}, 1.0)
    assert caught.value.kind == "refused"
    assert caught.value.permanent


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://8.8.8.8/", "https://"),
        ("ftp://8.8.8.8/", "https://"),
        ("https://user:secret@8.8.8.8/", "user name or password"),
        ("https://@8.8.8.8/", "user name or password"),
        ("https:///path", "no host"),
        ("https://8.8.8.8:99999/", "malformed"),
        ("https://[::1/", "malformed"),
        ("https://8.8.8.8/a b", "printable ASCII"),
        ("https://8.8.8.8/x?q=caf\u00e9", "printable ASCII"),
        ("https://8.8.8.8/x\r\nX-Injected: 1", "printable ASCII"),
    ],
)
def test_malformed_urls_are_refused_with_a_reason(url, message):
    refusal = url_refusal(url)
    assert refusal is not None
    assert message in refusal


@pytest.mark.parametrize(
    "url", ["https://8.8.8.8/hook", "https://[2606:4700:4700::1111]/", "https://[::ffff:8.8.8.8]/"]
)
def test_public_addresses_pass(url):
    assert url_refusal(url) is None


def fake_resolver(monkeypatch, answers: dict[str, list[str]]) -> list[str]:
    """Names resolve to ``answers`` without any network; returns the names looked up."""
    looked_up: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_a_name_is_refused_when_any_of_its_addresses_is_internal(monkeypatch):
    fake_resolver(
        monkeypatch,
        {
            "public.example": ["8.8.8.8", "2606:4700:4700::1111"],
            "mixed.example": ["8.8.8.8", "10.0.0.5"],
            "rebound.example": ["::ffff:169.254.169.254"],
        },
    )
    assert url_refusal("https://public.example/hook") is None
    assert "10.0.0.5" in (url_refusal("https://mixed.example/hook") or "")
    assert "169.254.169.254" in (url_refusal("https://rebound.example/") or "")


def test_an_unresolvable_host_is_refused_clearly(monkeypatch):
    fake_resolver(monkeypatch, {})
    assert url_refusal("https://nowhere.example/") == "The host 'nowhere.example' does not resolve."


def test_allowed_cidrs_let_only_their_addresses_through(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = tuple(ALLOWED)
    assert url_refusal("http://127.0.0.2:8080/hook") is None
    assert url_refusal("https://127.0.0.2/hook") is None
    assert url_refusal("http://127.0.0.1:8080/hook") is not None
    assert url_refusal("http://2130706434/") is None  # 127.0.0.2, spelled as the resolver reads it
    assert url_refusal("http://2130706433/") is not None
    # Plain http only when every address is allowed, even a public one is not enough.
    assert "https://" in (url_refusal("http://8.8.8.8/") or "")
    # The parameter overrides the setting.
    assert url_refusal("http://127.0.0.2/", allowed=[]) is not None


def test_address_rule_with_allowed_networks():
    loopback = ipaddress.ip_address("127.0.0.2")
    assert address_refusal(loopback) is not None
    assert address_refusal(loopback, ALLOWED) is None
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.2"), ALLOWED) is None
    assert address_refusal(ipaddress.ip_address("::ffff:127.0.0.1"), ALLOWED) is not None


class Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[dict[str, str]]

    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        self.server.seen.append(  # type: ignore[attr-defined]
            {"path": self.path, "host": self.headers["Host"], "body": body.decode()}
        )
        if self.path == "/ok":
            self.answer(200, b"x" * 10_000)
        elif self.path == "/error":
            self.answer(500, b"boom")
        elif self.path == "/slow":
            time.sleep(3)
            self.answer(200, b"late")
        elif self.path == "/dribble":
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.1)
        elif self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/internal")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/huge":
            self.send_response(200)
            self.send_header("Content-Length", str(1 << 30))
            self.end_headers()
            sent = 0
            try:
                while sent < 1 << 30:
                    self.wfile.write(b"y" * 65536)
                    sent += 65536
            except OSError:
                pass
            self.server.huge_sent = sent  # type: ignore[attr-defined]

    def answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up (a timeout test)
            self.wfile.write(body)


@pytest.fixture
def receiver(settings) -> Iterator[ThreadingHTTPServer]:
    settings.WEBHOOK_ALLOWED_CIDRS = tuple(ALLOWED)
    server = ThreadingHTTPServer((RECEIVER, 0), Receiver)
    server.daemon_threads = True
    server.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def url(server: ThreadingHTTPServer, path: str) -> str:
    return f"http://{RECEIVER}:{server.server_address[1]}{path}"


def test_an_answer_comes_back_with_its_body_capped(receiver):
    response = post(url(receiver, "/ok"), b'{"a": 1}', {"Content-Type": "application/json"}, 5)
    assert response.status == 200
    assert response.body_excerpt == b"x" * egress.BODY_CAP
    assert response.headers["content-length"] == "10000"
    assert 0 < response.elapsed < 5
    assert receiver.seen == [  # type: ignore[attr-defined]
        {"path": "/ok", "host": f"{RECEIVER}:{receiver.server_address[1]}", "body": '{"a": 1}'}
    ]


def test_a_server_error_is_an_answer_for_the_caller_to_judge(receiver):
    response = post(url(receiver, "/error"), b"{}", {}, 5)
    assert (response.status, response.body_excerpt) == (500, b"boom")


def test_a_redirect_is_returned_not_followed(receiver):
    response = post(url(receiver, "/redirect"), b"{}", {}, 5)
    assert response.status == 302
    assert response.headers["location"] == "http://127.0.0.1:9/internal"
    assert len(receiver.seen) == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("path", ["/slow", "/dribble"])
def test_a_slow_receiver_fails_within_the_deadline(receiver, path):
    started = time.monotonic()
    with pytest.raises(EgressError) as caught:
        post(url(receiver, path), b"{}", {}, 0.5)
    assert time.monotonic() - started < 1.0
    assert caught.value.kind == "timeout"
    assert not caught.value.permanent


def test_a_huge_answer_is_not_read_whole(receiver):
    started = time.monotonic()
    response = post(url(receiver, "/huge"), b"{}", {}, 5)
    assert response.body_excerpt == b"y" * egress.BODY_CAP
    assert time.monotonic() - started < 2


def test_a_closed_port_is_a_connection_error(settings):
    settings.WEBHOOK_ALLOWED_CIDRS = tuple(ALLOWED)
    with socket.socket() as probe:
        probe.bind((RECEIVER, 0))
        port = probe.getsockname()[1]
    with pytest.raises(EgressError) as caught:
        post(f"http://{RECEIVER}:{port}/", b"{}", {}, 2)
    assert caught.value.kind == "connection"
    assert not caught.value.permanent


def test_the_name_is_resolved_once_and_the_checked_address_is_used(receiver, monkeypatch):
    looked_up = fake_resolver(monkeypatch, {"hooks.example": [RECEIVER]})
    port = receiver.server_address[1]
    response = post(f"http://hooks.example:{port}/ok", b"{}", {"Host": "evil.example"}, 5)
    assert response.status == 200
    assert looked_up == ["hooks.example"]
    # The receiver sees the URL's name, never a caller's Host header.
    assert receiver.seen[0]["host"] == f"hooks.example:{port}"  # type: ignore[attr-defined]


def test_the_connect_time_check_refuses_a_name_that_now_points_inside(monkeypatch):
    fake_resolver(monkeypatch, {"hooks.example": ["127.0.0.1"]})
    connected: list[object] = []
    monkeypatch.setattr(socket, "socket", lambda *a, **k: connected.append(a))
    with pytest.raises(EgressError) as caught:
        post("https://hooks.example/", b"{}", {}, 2)
    assert caught.value.kind == "refused"
    assert connected == []


def test_the_timeout_is_bounded():
    with pytest.raises(ValueError, match="timeout"):
        post("https://8.8.8.8/", b"{}", {}, 16)


def test_a_session_for_libraries_that_take_one(receiver):
    session = egress.GuardedSession(timeout=5)
    response = session.post(url(receiver, "/error"), data="{}", headers={"TTL": 60}, timeout=30)
    assert (response.status_code, response.reason, response.text) == (
        500,
        "Internal Server Error",
        "boom",
    )
    with pytest.raises(EgressError) as caught:
        session.post("https://127.0.0.1/", data=b"{}")
    assert caught.value.permanent


def certificate_authority(tmp_path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A client context trusting a fresh CA, and a server context with that CA's certificate for
    ``name``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)

    def issue(subject, key, issuer, issuer_key, *, ca: bool):
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False
            )
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = issue("Test CA", ca_key, "Test CA", ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = issue(name, key, "Test CA", ca_key, ca=False)
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca_cert.public_bytes(pem))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    client = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    return client, server


def test_tls_is_verified_against_the_urls_name_not_the_address(receiver, monkeypatch, tmp_path):
    client, server_context = certificate_authority(tmp_path, "hooks.example")
    receiver.socket = server_context.wrap_socket(receiver.socket, server_side=True)
    fake_resolver(monkeypatch, {"hooks.example": [RECEIVER], "other.example": [RECEIVER]})
    port = receiver.server_address[1]

    response = post(f"https://hooks.example:{port}/ok", b"{}", {}, 5, ssl_context=client)
    assert response.status == 200
    assert receiver.seen[0]["host"] == f"hooks.example:{port}"  # type: ignore[attr-defined]

    with pytest.raises(EgressError) as caught:
        post(f"https://other.example:{port}/ok", b"{}", {}, 5, ssl_context=client)
    assert caught.value.kind == "tls"
    with pytest.raises(EgressError) as caught:  # the system's CAs do not know the test CA
        post(f"https://hooks.example:{port}/ok", b"{}", {}, 5)
    assert caught.value.kind == "tls"
