"""A caller: an in-process API client bound to a host and a bearer token.

Each test runs in a transaction that is rolled back, so nothing commits and ``on_commit`` hooks
(cache invalidation, real-time events) would never run. A real request commits when its service
returns; the caller runs the request's commit hooks right after it, as that commit would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.test import TestCase
from rest_framework.response import Response
from rest_framework.test import APIClient


@dataclass
class Caller:
    host: str
    token: str | None = None

    def _headers(self, extra: dict[str, str]) -> dict[str, str]:
        headers = {"HTTP_HOST": self.host, **extra}
        if self.token:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        return headers

    def get(self, path: str, params: dict[str, Any] | None = None, **headers: str) -> Response:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return APIClient().get(path, params or {}, **self._headers(headers))

    def post(self, path: str, body: Any = None, **headers: str) -> Response:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return APIClient().post(path, body, format="json", **self._headers(headers))

    def put(self, path: str, body: Any = None, **headers: str) -> Response:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return APIClient().put(path, body, format="json", **self._headers(headers))

    def patch(self, path: str, body: Any = None, **headers: str) -> Response:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return APIClient().patch(path, body, format="json", **self._headers(headers))

    def delete(self, path: str, **headers: str) -> Response:
        with TestCase.captureOnCommitCallbacks(execute=True):
            return APIClient().delete(path, **self._headers(headers))


def error_code(response: Response) -> str:
    return response.json()["error"]["code"]
