"""The widget's script as served: read once per process, with its hash, gzip copy and SRI digest.

The source is hand-written (``widget/src/herald.js``, no build step). Its URL for customers is
``/widget/v1/herald.js`` (short cache, revalidated by ETag); ``/widget/v1/herald.<hash8>.js`` is
the same bytes under a content-addressed URL that can be cached for a year. The service worker
for browser notifications (``widget/src/herald-sw.js``) is served the same way at
``/widget/v1/herald-sw.js``, short cache only: customers copy it or ``importScripts`` it.
The settings view (``widget/src/herald-settings.js``) is served at
``/widget/v1/herald-settings.js``, short cache, and loaded by herald.js on first use with a
Subresource Integrity value written in herald.js (``SETTINGS``), so a pinned herald.js pins it too.
"""

from __future__ import annotations

import base64
import functools
import gzip
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "src" / "herald.js"
SERVICE_WORKER_SOURCE = SOURCE.with_name("herald-sw.js")
SETTINGS_SOURCE = SOURCE.with_name("herald-settings.js")
VERSION_PATTERN = re.compile(r'const VERSION = "([0-9.]+)"')


@dataclass(frozen=True)
class Bundle:
    body: bytes
    gzipped: bytes
    digest: str  # first 8 hex characters of the SHA-256: the immutable URL's name
    etag: str  # strong ETag of the identity encoding; the gzip encoding adds "-gzip"
    integrity: str  # Subresource Integrity value (sha384) for <script integrity=...>
    integrity_sha256: str  # the same in sha256, as herald.js pins herald-settings.js
    version: str

    @property
    def filename(self) -> str:
        return f"herald.{self.digest}.js"


def bundle_from_bytes(body: bytes) -> Bundle:
    sha256 = hashlib.sha256(body).hexdigest()
    match = VERSION_PATTERN.search(body.decode("utf-8"))
    return Bundle(
        body=body,
        gzipped=gzip.compress(body, compresslevel=9, mtime=0),
        digest=sha256[:8],
        etag=f'"{sha256[:32]}"',
        integrity="sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode(),
        integrity_sha256="sha256-" + base64.b64encode(hashlib.sha256(body).digest()).decode(),
        version=match.group(1) if match else "1",
    )


@functools.cache
def widget_bundle() -> Bundle:
    """The served script. Read once per process: a deploy restarts the processes."""
    return bundle_from_bytes(SOURCE.read_bytes())


@functools.cache
def service_worker_bundle() -> Bundle:
    """The served service worker, read once per process like the script."""
    return bundle_from_bytes(SERVICE_WORKER_SOURCE.read_bytes())


@functools.cache
def settings_bundle() -> Bundle:
    """The served settings view, read once per process like the script."""
    return bundle_from_bytes(SETTINGS_SOURCE.read_bytes())
