"""Serving the widget's script: public, cacheable, on every host (tenant or platform).

- ``/widget/v1/herald.js``: ``Cache-Control: public, max-age=300`` and a strong ETag, so a new
  release reaches every page within five minutes and revalidation is a 304.
- ``/widget/v1/herald.<hash8>.js``: the same bytes, cached for a year (``immutable``).
- ``/widget/v1/manifest.json``: the current immutable URL and its Subresource Integrity value,
  for customers who pin the script.
- ``/widget/v1/locales/<language>.json``: the widget's strings in one language (see
  ``widget.locales``), short cache and ETag like the script; 404 for a language not shipped.
- ``/widget/v1/herald-sw.js``: the service worker for browser notifications, short cache and
  ETag like the script. A service worker only receives pushes for the origin it is served from,
  so customers serve a copy (or a one-line ``importScripts`` of this URL) from their own origin;
  this URL is never registered as it stands. Hence no ``Service-Worker-Allowed`` header: it
  widens the scope of a worker registered from the URL's own origin, which is Herald's.
- ``/widget/v1/herald-settings.js``: the widget's settings view, which herald.js loads on first
  use (CORS mode, with its integrity value); short cache and ETag like the script.

Gzip is served to clients that accept it. ``Access-Control-Allow-Origin: *``: it is public code.
"""

from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified, JsonResponse
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from widget.bundle import Bundle, service_worker_bundle, settings_bundle, widget_bundle
from widget.locales import catalogue_bundles

SHORT_CACHE = "public, max-age=300"
LONG_CACHE = "public, max-age=31536000, immutable"
GZIP_RE = re.compile(r"\bgzip\b(?!\s*;\s*q=0(?:\.0*)?\s*(?:,|$))", re.IGNORECASE)


def _public(response: HttpResponse, cache_control: str) -> HttpResponse:
    response["Cache-Control"] = cache_control
    response["Access-Control-Allow-Origin"] = "*"
    # Pages that isolate themselves (COEP) may still load it from Herald's host.
    response["Cross-Origin-Resource-Policy"] = "cross-origin"
    patch_vary_headers(response, ["Accept-Encoding"])
    return response


def _matches(if_none_match: str, bundle: Bundle) -> bool:
    """If-None-Match uses the weak comparison: ``W/"x"`` matches ``"x"``; ``*`` matches all."""
    ours = {bundle.etag, bundle.etag[:-1] + '-gzip"'}
    for tag in if_none_match.split(","):
        tag = tag.strip()
        if tag == "*" or tag.removeprefix("W/") in ours:
            return True
    return False


def _serve(
    request: HttpRequest,
    cache_control: str,
    bundle: Bundle | None = None,
    content_type: str = "text/javascript; charset=utf-8",
) -> HttpResponse:
    bundle = bundle or widget_bundle()
    use_gzip = bool(GZIP_RE.search(request.headers.get("Accept-Encoding", "")))
    etag = bundle.etag[:-1] + '-gzip"' if use_gzip else bundle.etag
    if _matches(request.headers.get("If-None-Match", ""), bundle):
        response: HttpResponse = HttpResponseNotModified()
    else:
        body = bundle.gzipped if use_gzip else bundle.body
        response = HttpResponse(
            b"" if request.method == "HEAD" else body,
            content_type=content_type,
        )
        response["Content-Length"] = str(len(body))
        if use_gzip:
            response["Content-Encoding"] = "gzip"
    response["ETag"] = etag
    response["X-Herald-Widget-Version"] = bundle.version
    return _public(response, cache_control)


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def script(request: HttpRequest) -> HttpResponse:
    return _serve(request, SHORT_CACHE)


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def script_immutable(request: HttpRequest, digest: str) -> HttpResponse:
    if digest != widget_bundle().digest:
        raise Http404("No such widget build.")
    return _serve(request, LONG_CACHE)


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def service_worker(request: HttpRequest) -> HttpResponse:
    return _serve(request, SHORT_CACHE, service_worker_bundle())


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def settings_script(request: HttpRequest) -> HttpResponse:
    return _serve(request, SHORT_CACHE, settings_bundle())


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def locale_catalogue(request: HttpRequest, language: str) -> HttpResponse:
    """The URL pattern admits only a language subtag; anything not shipped is 404 (with the
    CORS header, so the widget sees the status and stays in English)."""
    bundle = catalogue_bundles().get(language)
    if bundle is None:
        missing = JsonResponse(
            {"error": {"code": "not_found", "message": "No catalogue for this language."}},
            status=404,
        )
        return _public(missing, SHORT_CACHE)
    response = _serve(request, SHORT_CACHE, bundle, "application/json; charset=utf-8")
    del response["X-Herald-Widget-Version"]  # a catalogue is not a build of the script
    return response


def immutable_path() -> str:
    return reverse("widget:script-immutable", kwargs={"digest": widget_bundle().digest})


@csrf_exempt  # public, read-only: a POST is answered 405, not a CSRF page
@require_safe
def manifest(request: HttpRequest) -> HttpResponse:
    bundle = widget_bundle()
    body = {
        "version": bundle.version,
        "url": request.build_absolute_uri(reverse("widget:script")),
        "immutable_url": request.build_absolute_uri(immutable_path()),
        "integrity": bundle.integrity,
        "bytes": len(bundle.body),
        "gzip_bytes": len(bundle.gzipped),
    }
    return _public(JsonResponse(body), SHORT_CACHE)
