"""Malformed input is a 4xx in the contract's error shape, never a 500 or a CSRF page: JSON nested
too deep, NUL and bytes that are not UTF-8 in paths, queries and bodies, unknown API routes.

Against the real ``web`` process over real HTTP, as a client meets them."""

from __future__ import annotations

import http.client
import json
import re
import socket
import uuid
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

import pytest
from django.conf import settings

from herald.handlers import SyncASGIHandler
from tests.support.aio import run_loop
from tests.support.asgi import call as call_asgi
from tests.support.processes import Server

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)

    def error(self) -> dict[str, Any]:
        """The contract's error object, after checking the body has that shape and nothing else."""
        assert self.headers.get("content-type", "").startswith("application/json"), self
        body = self.json()
        assert set(body) == {"error"}, body
        assert {"code", "message"} <= set(body["error"]) <= {"code", "message", "details"}, body
        return body["error"]


def call(
    web: Server,
    method: str,
    path: str,
    *,
    host: str,
    token: str | None = None,
    body: bytes | None = None,
    content_type: str = "application/json",
    cookies: dict[str, str] | None = None,
) -> Reply:
    """One request with exactly these bytes (``path`` already percent-encoded)."""
    headers = {"Host": f"{host}:{web.port}"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    if body is not None:
        headers["Content-Type"] = content_type
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        reply = Reply(response.status, headers, response.read())
        reply.cookies = {
            morsel.key: morsel.value
            for value in response.headers.get_all("Set-Cookie") or []
            for morsel in SimpleCookie(value).values()
        }
        return reply
    finally:
        connection.close()


def raw_call(web: Server, request_line: bytes, host: str) -> Reply:
    """A request line http.client would refuse to send (raw bytes that are not ASCII)."""
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as sock:
        sock.sendall(
            request_line + b"\r\nHost: " + f"{host}:{web.port}".encode() + b"\r\n"
            b"Connection: close\r\n\r\n"
        )
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return Reply(int(lines[0].split()[1]), headers, body)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def nested(depth: int, leaf: str = "1") -> bytes:
    """``depth`` arrays nested in each other, as raw JSON (json.dumps would recurse too)."""
    return b"[" * depth + leaf.encode() + b"]" * depth


# --- JSON nested too deep ----------------------------------------------------------------------


def test_a_send_nested_thousands_deep_is_400_and_creates_nothing(web, world):
    alice = world.alice
    recipient = unique("deep")
    body = b'{"type": "edge", "recipients": ["%s"], "message": "hi", "data": {"x": %s}}' % (
        recipient.encode(),
        nested(5000),
    )
    reply = call(
        web, "POST", "/api/v1/notifications", host=alice.host, token=alice.api_key, body=body
    )
    assert reply.status == 400
    error = reply.error()
    assert error["code"] == "invalid"
    assert f"more than {settings.JSON_MAX_DEPTH} levels" in error["message"]

    listed = call(
        web,
        "GET",
        f"/api/v1/notifications?recipient={recipient}",
        host=alice.host,
        token=alice.api_key,
    )
    assert listed.status == 200
    assert listed.json()["results"] == []
    assert (
        call(web, "GET", f"/api/v1/users/{recipient}", host=alice.host, token=alice.api_key).status
        == 404
    )


def test_user_data_nested_thousands_deep_is_400_and_creates_nothing(web, world):
    alice = world.alice
    user = unique("deep-user")
    body = b'{"name": "Deep", "data": {"x": %s}}' % nested(5000)
    reply = call(
        web, "PUT", f"/api/v1/users/{user}", host=alice.host, token=alice.api_key, body=body
    )
    assert reply.status == 400
    assert reply.error()["code"] == "invalid"
    assert (
        call(web, "GET", f"/api/v1/users/{user}", host=alice.host, token=alice.api_key).status
        == 404
    )


def test_nesting_up_to_the_limit_is_accepted(web, world):
    alice = world.alice
    user = unique("nested-user")
    # The body's own object is the first level.
    data = b'{"x": %s}' % nested(settings.JSON_MAX_DEPTH - 2)
    reply = call(
        web,
        "PUT",
        f"/api/v1/users/{user}",
        host=alice.host,
        token=alice.api_key,
        body=b'{"data": %s}' % data,
    )
    assert reply.status == 201, reply.body
    assert reply.json()["data"] == json.loads(data)


# --- Numbers no float can hold -----------------------------------------------------------------


@pytest.mark.parametrize("number", [b"1e999", b"-1e999", b"NaN", b"Infinity"])
def test_a_number_no_float_holds_is_400_and_creates_nothing(web, world, number):
    """``1e999`` is JSON, but Python reads it as infinity, which ``jsonb`` refuses (a 500 once)."""
    alice = world.alice
    recipient = unique("inf")
    body = b'{"type": "edge", "recipients": ["%s"], "message": "hi", "data": {"x": %s}}' % (
        recipient.encode(),
        number,
    )
    reply = call(
        web, "POST", "/api/v1/notifications", host=alice.host, token=alice.api_key, body=body
    )
    assert reply.status == 400, reply.body
    error = reply.error()
    assert error["code"] == "invalid"
    assert number.decode() in error["message"]
    user = call(
        web,
        "PUT",
        f"/api/v1/users/{recipient}",
        host=alice.host,
        token=alice.api_key,
        body=b'{"data": {"x": [%s]}}' % number,
    )
    assert user.status == 400, user.body
    assert user.error()["code"] == "invalid"
    assert (
        call(web, "GET", f"/api/v1/users/{recipient}", host=alice.host, token=alice.api_key).status
        == 404
    )


def test_numbers_floats_hold_and_big_integers_are_kept_exactly(web, world):
    alice = world.alice
    user = unique("numbers")
    data = b'{"small": 1e-999, "big": 1.5e308, "int": 123456789012345678901234567890, "neg": -0.0}'
    reply = call(
        web,
        "PUT",
        f"/api/v1/users/{user}",
        host=alice.host,
        token=alice.api_key,
        body=b'{"data": %s}' % data,
    )
    assert reply.status == 201, reply.body
    assert reply.json()["data"] == {
        "small": 0.0,
        "big": 1.5e308,
        "int": 123456789012345678901234567890,
        "neg": 0.0,
    }


# --- NUL and other text PostgreSQL cannot store, in JSON bodies ------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"type": "edge", "recipients": ["%s"], "message": "a\\u0000b"}', "message"),
        (b'{"type": "edge", "recipients": ["%s"], "message": "hi", "title": "\\u0000"}', "title"),
        (
            b'{"type": "edge", "recipients": ["%s"], "message": "hi", "data": {"k\\u0000": 1}}',
            "data",
        ),
        (
            b'{"type": "edge", "recipients": ["%s"], "message": "hi", "data": {"k": ["\\u0000"]}}',
            "data",
        ),
        (
            b'{"type": "edge", "recipients": [{"id": "%s", "name": "\\u0000"}], "message": "hi"}',
            "recipients",
        ),
        (b'{"type": "edge", "recipients": ["%s"], "message": "\\ud800"}', "message"),
        (b'{"type": "edge", "recipients": ["%s"], "message": "hi", "\\u0000": 1}', "body"),
    ],
    ids=["message", "title", "data-key", "data-value", "recipient-name", "lone-surrogate", "key"],
)
def test_a_send_with_nul_or_a_lone_surrogate_in_a_string_is_400_and_creates_nothing(
    web, world, body, field
):
    alice = world.alice
    recipient = unique("nul")
    reply = call(
        web,
        "POST",
        "/api/v1/notifications",
        host=alice.host,
        token=alice.api_key,
        body=body.replace(b"%s", recipient.encode()),
    )
    assert reply.status == 400, reply.body
    error = reply.error()
    assert error["code"] == "invalid"
    assert "NUL" in error["message"] or "surrogate" in error["message"]
    assert list(error["details"]) == [field]
    assert (
        call(web, "GET", f"/api/v1/users/{recipient}", host=alice.host, token=alice.api_key).status
        == 404
    )


def test_a_user_upsert_with_nul_in_a_string_is_400(web, world):
    alice = world.alice
    user = unique("nul-user")
    for body in (b'{"name": "a\\u0000"}', b'{"data": {"\\u0000": "x"}}'):
        reply = call(
            web, "PUT", f"/api/v1/users/{user}", host=alice.host, token=alice.api_key, body=body
        )
        assert reply.status == 400, reply.body
        assert reply.error()["code"] == "invalid"
    assert (
        call(web, "GET", f"/api/v1/users/{user}", host=alice.host, token=alice.api_key).status
        == 404
    )


def test_an_escaped_backslash_before_u0000_is_text_and_accepted(web, world):
    alice = world.alice
    user = unique("backslash")
    reply = call(
        web,
        "PUT",
        f"/api/v1/users/{user}",
        host=alice.host,
        token=alice.api_key,
        body=b'{"name": "C:\\\\u0000 [x] {y}"}',
    )
    assert reply.status == 201, reply.body
    assert reply.json()["name"] == "C:\\u0000 [x] {y}"


# --- NUL and bytes that are not UTF-8 in paths and queries -----------------------------------


@pytest.mark.parametrize(
    ("method", "target", "part"),
    [
        ("PUT", "/api/v1/users/a%00b", "path"),
        ("GET", "/api/v1/users/a%00b", "path"),
        ("GET", "/api/v1/users/%FF", "path"),
        ("GET", "/api/v1/users/%ED%A0%80", "path"),  # an encoded surrogate
        ("GET", "/api/v1/types/%00", "path"),
        ("GET", "/api/v1/notifications?recipient=%00", "query"),
        ("GET", "/api/v1/notifications?type=%00", "query"),
        ("GET", "/api/v1/notifications?recipient=%FFx", "query"),
        ("GET", "/api/v1/notifications?%00=1", "query"),
        ("GET", "/api/v1/deliveries?recipient=%00", "query"),
        ("GET", "/api/v1/no/such/%00", "path"),
        ("GET", "/dashboard/%00", "path"),
    ],
)
def test_nul_or_bytes_that_are_not_utf8_in_a_path_or_query_are_400(
    web, world, method, target, part
):
    alice = world.alice
    body = b'{"name": "x"}' if method == "PUT" else None
    for token in (alice.api_key, None):
        for host in (alice.host, settings.PLATFORM_HOST):
            reply = call(web, method, target, host=host, token=token, body=body)
            if target.startswith("/dashboard/"):
                assert reply.status == 400
                assert b"Bad request" in reply.body
                continue
            assert reply.status == 400, (host, token, reply.body)
            error = reply.error()
            assert error["code"] == "invalid"
            assert error["details"] == {part: ["Must be UTF-8 text without NUL characters."]}


def test_a_raw_byte_that_is_not_utf8_in_the_query_is_400(web, world):
    # uvicorn refuses such a request line itself (400, plain text) before the app sees it.
    reply = raw_call(web, b"GET /api/v1/notifications?recipient=\xff HTTP/1.1", world.alice.host)
    assert reply.status == 400


def test_the_handler_answers_a_query_that_is_not_utf8_in_the_error_shape(world):
    """For servers that pass such bytes on: Django's own refusal is a plain-text 400."""
    handler = SyncASGIHandler()
    answer = run_loop(
        call_asgi(
            handler,
            "GET",
            "/api/v1/notifications",
            host=world.alice.host,
            token=world.alice.api_key,
            query_string=b"recipient=\xff",
        )
    )
    assert answer.status == 400
    assert answer.json()["error"]["code"] == "invalid"
    assert answer.json()["error"]["details"] == {
        "query": ["Must be UTF-8 text without NUL characters."]
    }


def test_unicode_in_paths_and_queries_still_works(web, world):
    alice = world.alice
    # "%00" is text here (sent as %25%30%30): decoded once, it is no NUL.
    user = "caf\u00e9-\u6771\u4eac-\U0001f600-%00-" + uuid.uuid4().hex[:8]
    encoded = "".join(f"%{b:02X}" for b in user.encode())
    reply = call(
        web,
        "PUT",
        f"/api/v1/users/{encoded}",
        host=alice.host,
        token=alice.api_key,
        body=b'{"name": "\\u00e9l\\u00e8ve"}',
    )
    assert reply.status == 201, reply.body
    assert reply.json()["id"] == user
    listed = call(
        web,
        "GET",
        f"/api/v1/notifications?recipient={encoded}&type=a+b",
        host=alice.host,
        token=alice.api_key,
    )
    assert listed.status == 200, listed.body


# --- Unknown API routes --------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS)
def test_an_unknown_api_path_is_404_json_for_every_method_on_every_host(web, world, method):
    alice = world.alice
    body = b"{}" if method in {"POST", "PUT", "PATCH"} else None
    for host in (alice.host, settings.PLATFORM_HOST):
        for token in (alice.api_key, None):
            for path in ("/api/v1/no/such/thing", "/api/v1/notifications/extra", "/api/v2/x"):
                reply = call(web, method, path, host=host, token=token, body=body)
                assert reply.status == 404, (host, token, path, reply.status, reply.body)
                assert reply.error() == {
                    "code": "not_found",
                    "message": f"No such resource: {path}",
                }


def test_an_unknown_api_path_answers_head_with_404(web, world):
    reply = call(web, "HEAD", "/api/v1/no/such/thing", host=world.alice.host)
    assert reply.status == 404
    assert reply.body == b""


@pytest.mark.parametrize(
    ("method", "path"),
    [("DELETE", "/api/v1/tenant"), ("POST", "/api/v1/usage"), ("PATCH", "/api/v1/notifications")],
)
def test_a_known_api_path_with_a_wrong_method_is_405_json(web, world, method, path):
    alice = world.alice
    body = b"{}" if method in {"POST", "PATCH"} else None
    reply = call(web, method, path, host=alice.host, token=alice.api_key, body=body)
    assert reply.status == 405
    assert reply.error()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/healthz"),
        ("DELETE", "/readyz"),
        ("POST", "/api/schema/"),
        ("PUT", "/api/docs/"),
        ("POST", "/api/redoc/"),
        ("PUT", "/widget/v1/herald.js"),
    ],
)
def test_other_routes_with_a_wrong_method_are_405_json_not_a_csrf_page(web, world, method, path):
    reply = call(web, method, path, host=world.alice.host, body=b"{}")
    assert reply.status == 405, reply.body
    assert reply.error()["code"] == "method_not_allowed"
    assert reply.headers["allow"]


# --- Form bodies ------------------------------------------------------------------------------


def _form_post(web, path: str, host: str, fields: bytes, cookies: dict[str, str]) -> Reply:
    """A form posted as a browser would: with the CSRF cookie and token of the page's GET."""
    page = call(web, "GET", path, host=host, cookies=cookies)
    cookies = {**cookies, **page.cookies}
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body).group(1)
    body = b"csrfmiddlewaretoken=" + token + b"&" + fields
    reply = call(
        web,
        "POST",
        path,
        host=host,
        body=body,
        cookies=cookies,
        content_type="application/x-www-form-urlencoded",
    )
    reply.cookies = {**cookies, **reply.cookies}
    return reply


def test_nul_in_a_dashboard_form_is_refused_by_the_form_not_a_500(web, world):
    """The dashboard's forms refuse NUL themselves, naming the field and keeping the input
    (tests/dashboard: the type editor and the notification filters show the message)."""
    refused = _form_post(
        web, "/dashboard/login", world.alice.host, b"username=a%00b&password=x", {}
    )
    assert refused.status == 200  # the login form again
    assert "sessionid" not in refused.cookies


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"username=a%00b&password=x", "application/x-www-form-urlencoded"),
        (b"username=%FF&password=x", "application/x-www-form-urlencoded"),
        (
            b'--b\r\nContent-Disposition: form-data; name="username"\r\n\r\na\x00b\r\n--b--\r\n',
            "multipart/form-data; boundary=b",
        ),
    ],
)
def test_nul_in_a_form_elsewhere_is_400_before_any_view(web, body, content_type):
    """The Django admin on the platform host: refused before the CSRF check or its search."""
    reply = call(
        web,
        "POST",
        "/admin/login/",
        host=settings.PLATFORM_HOST,
        body=body,
        content_type=content_type,
    )
    assert reply.status == 400
    assert reply.error()["details"] == {"body": ["Must be UTF-8 text without NUL characters."]}
    reply = call(web, "GET", "/admin/tenants/tenant/?q=%00", host=settings.PLATFORM_HOST)
    assert reply.status == 400
    assert reply.error()["details"] == {"query": ["Must be UTF-8 text without NUL characters."]}


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b"]
)
def test_a_form_sent_to_the_api_is_415(web, world, content_type):
    alice = world.alice
    body = (
        b"type=a%00&message=x"
        if content_type.startswith("application")
        else b'--b\r\nContent-Disposition: form-data; name="type"\r\n\r\na\x00\r\n--b--\r\n'
    )
    reply = call(
        web,
        "POST",
        "/api/v1/notifications",
        host=alice.host,
        token=alice.api_key,
        body=body,
        content_type=content_type,
    )
    assert reply.status == 415
    assert reply.error()["code"] == "unsupported_media_type"


def test_a_body_over_the_size_limit_is_413_in_the_error_shape(web, world):
    alice = world.alice
    padding = b"a" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = b'{"type": "edge", "recipients": ["big"], "message": "%s"}' % padding
    reply = call(
        web, "POST", "/api/v1/notifications", host=alice.host, token=alice.api_key, body=body
    )
    assert reply.status == 413
    assert reply.error()["code"] == "too_large"


# --- In this process (WSGI-style requests, as the test client makes them) --------------------


def test_a_percent_sign_that_decodes_to_text_is_not_decoded_twice(alice_key):
    # %2500 is the text "%00": a user id, not a NUL.
    response = alice_key.put("/api/v1/users/a%2500b", {"name": "Percent"})
    assert response.status_code == 201, response.content
    assert response.json()["id"] == "a%00b"
    assert alice_key.get("/api/v1/notifications", {"recipient": "a%00b"}).status_code == 200


def test_nul_in_a_path_or_query_is_400_in_process_too(alice_key):
    for response in (
        alice_key.get("/api/v1/users/a%00b"),
        alice_key.get("/api/v1/notifications", {"recipient": "a\x00b"}),
    ):
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid"


def test_a_body_in_another_charset_gets_the_same_checks(api, world):
    headers = {"HTTP_HOST": world.alice.host, "HTTP_AUTHORIZATION": f"Bearer {world.alice.api_key}"}
    for text, code in (
        ('{"data": {"x": ' + "[" * 100 + "]" * 100 + "}}", "invalid"),
        ('{"name": "a\\u0000"}', "invalid"),
    ):
        response = api.generic(
            "PUT",
            "/api/v1/users/charset-user",
            text.encode("utf-16"),
            content_type="application/json; charset=utf-16",
            **headers,
        )
        assert response.status_code == 400, response.content
        assert response.json()["error"]["code"] == code
    response = api.generic(
        "PUT",
        "/api/v1/users/charset-user",
        '{"name": "\u00e9l\u00e8ve"}'.encode("utf-16"),
        content_type="application/json; charset=utf-16",
        **headers,
    )
    assert response.status_code == 201, response.content
    assert response.json()["name"] == "\u00e9l\u00e8ve"
