"""Serving herald.js (and its service worker, herald-sw.js): on every host, cacheable, revalidated
by ETag, gzipped, small, and free of the constructs a strict CSP forbids."""

from __future__ import annotations

import gzip
import re

import pytest

from tests.support.processes import http
from widget.bundle import SERVICE_WORKER_SOURCE, SOURCE, widget_bundle

SIZE_BUDGET = 15 * 1024  # gzipped bytes


@pytest.fixture
def hosts(world):
    return {"platform": "localhost", "tenant": world.alice.host}


@pytest.mark.parametrize("host", ["platform", "tenant"])
def test_the_script_is_served_on_every_host_with_public_caching(web, hosts, host):
    response = http("GET", f"{web.url}/widget/v1/herald.js", headers={"Host": hosts[host]})
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == "*"
    assert re.fullmatch(r'"[0-9a-f]{32}"', headers["etag"])
    assert "Herald.mount" in response.body or "mount(element, options)" in response.body
    assert response.body.encode() == SOURCE.read_bytes()


def test_an_unchanged_script_revalidates_with_304(web, hosts):
    url, host = f"{web.url}/widget/v1/herald.js", {"Host": hosts["tenant"]}
    etag = {k.lower(): v for k, v in http("GET", url, headers=host).headers.items()}["etag"]
    again = http("GET", url, headers={**host, "If-None-Match": etag})
    assert again.status == 304
    assert again.body is None
    weak = http("GET", url, headers={**host, "If-None-Match": f'"other", W/{etag}'})
    assert weak.status == 304
    assert http("GET", url, headers={**host, "If-None-Match": '"stale"'}).status == 200


def test_gzip_is_served_to_clients_that_accept_it_and_stays_under_budget(web, hosts):
    response = http(
        "GET",
        f"{web.url}/widget/v1/herald.js",
        headers={"Host": hosts["platform"], "Accept-Encoding": "gzip"},
    )
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert headers["content-encoding"] == "gzip"
    assert headers["etag"].endswith('-gzip"')
    assert "Accept-Encoding" in headers["vary"]
    compressed = int(headers["content-length"])
    assert compressed < SIZE_BUDGET, f"herald.js is {compressed} bytes gzipped (budget 15 KB)"
    # Independently of the server: the source itself, gzipped, is within budget.
    assert len(gzip.compress(SOURCE.read_bytes(), compresslevel=9)) < SIZE_BUDGET


def test_the_content_addressed_url_is_immutable_and_unknown_builds_are_404(web, hosts):
    bundle = widget_bundle()
    host = {"Host": hosts["tenant"]}
    response = http("GET", f"{web.url}/widget/v1/{bundle.filename}", headers=host)
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 200
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.body.encode() == bundle.body
    assert http("GET", f"{web.url}/widget/v1/herald.00000000.js", headers=host).status == 404


def test_the_manifest_names_the_immutable_url_and_its_integrity(web, hosts):
    host = hosts["tenant"]
    manifest = http("GET", f"{web.url}/widget/v1/manifest.json", headers={"Host": host}).body
    bundle = widget_bundle()
    assert manifest["immutable_url"] == f"http://{host}/widget/v1/{bundle.filename}"
    assert manifest["integrity"] == bundle.integrity
    assert manifest["version"] == bundle.version == "1.0.0"


def test_head_and_other_methods(web, hosts):
    url, host = f"{web.url}/widget/v1/herald.js", {"Host": hosts["platform"]}
    assert http("HEAD", url, headers=host).status == 200
    assert http("POST", url, headers=host, body={}).status == 405


def test_an_unknown_host_gets_404(web):
    assert (
        http("GET", f"{web.url}/widget/v1/herald.js", headers={"Host": "nope.localhost"}).status
        == 404
    )


def test_the_service_worker_script_is_served_like_the_widget(web, hosts):
    url, host = f"{web.url}/widget/v1/herald-sw.js", {"Host": hosts["tenant"]}
    response = http("GET", url, headers=host)
    headers = {name.lower(): value for name, value in response.headers.items()}
    assert response.status == 200
    assert headers["content-type"] == "text/javascript; charset=utf-8"
    assert headers["cache-control"] == "public, max-age=300"
    assert headers["access-control-allow-origin"] == "*"
    assert "service-worker-allowed" not in headers
    assert response.body.encode() == SERVICE_WORKER_SOURCE.read_bytes()
    assert http("GET", url, headers={**host, "If-None-Match": headers["etag"]}).status == 304
    gzipped = http("GET", url, headers={**host, "Accept-Encoding": "gzip"})
    assert {k.lower(): v for k, v in gzipped.headers.items()}["content-encoding"] == "gzip"
    assert http("POST", url, headers=host, body={}).status == 405


def test_the_source_uses_nothing_a_strict_csp_or_escaping_forbids():
    source = SOURCE.read_text()
    code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", source, flags=re.S | re.M)
    forbidden = ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("]
    forbidden += ["new Function", 'setAttribute("style"', 'setTimeout("', "import("]
    for construct in forbidden:
        assert construct not in code, construct


def test_the_service_worker_uses_no_eval_either():
    code = re.sub(r"/\*.*?\*/|^\s*//.*$", "", SERVICE_WORKER_SOURCE.read_text(), flags=re.S | re.M)
    for construct in ["eval(", "new Function", "import("]:
        assert construct not in code, construct
