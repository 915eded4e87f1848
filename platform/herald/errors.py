"""The contract's error shape, ``{"error": {"code", "message", "details"?}}``, for every 4xx/5xx.

Services raise ``herald.domain`` errors; ``exception_handler`` is the one place that gives them
their HTTP status (``http_status``) and body. Three doors lead here: DRF's exception handler
(API views), Django's handler404/handler500 (URLs no view matched, and crashes outside DRF), and
``error_response``/``page_or_error`` for middleware that answers before any view runs (refused
input, tenant resolution).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import render
from rest_framework import exceptions as drf_exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_default_handler

from herald.domain import DomainError

_CODES_BY_STATUS = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    500: "server_error",
    503: "unavailable",
}

_STATUS_BY_DOMAIN_CODE = {
    "invalid": 400,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "quota_exceeded": 429,
}


def http_status(error: DomainError) -> int:
    """The status the contract gives a domain error's code."""
    return _STATUS_BY_DOMAIN_CODE[error.code]


class ApiError(drf_exceptions.APIException):
    """An API error with an explicit contract code, e.g. ``ApiError(409, "conflict", "...")``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(
    status: int,
    message: str,
    *,
    code: str | None = None,
    details: Any = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    """A plain Django JSON error response, for code that runs outside DRF."""
    response = JsonResponse(
        error_body(code or _CODES_BY_STATUS.get(status, "error"), message, details), status=status
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _validation_details(detail: Any) -> Any:
    """DRF's nested ``ErrorDetail`` lists and dicts, as plain strings keyed by field."""
    if isinstance(detail, dict):
        return {str(key): _validation_details(value) for key, value in detail.items()}
    if isinstance(detail, list):
        return [_validation_details(item) for item in detail]
    return str(detail)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF ``EXCEPTION_HANDLER``: every handled exception becomes the contract's error body."""
    if isinstance(exc, DomainError):
        return Response(error_body(exc.code, exc.message, exc.details), status=http_status(exc))
    if isinstance(exc, ApiError):
        return Response(
            error_body(exc.error_code, exc.message, exc.details),
            status=exc.status_code,
            headers=exc.headers,
        )

    response = drf_default_handler(exc, context)
    if response is None:
        return None  # not an API exception: Django's handler500 answers, Sentry sees it

    if isinstance(exc, Http404):
        exc = drf_exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = drf_exceptions.PermissionDenied()

    code = _CODES_BY_STATUS.get(response.status_code, "error")
    if isinstance(exc, drf_exceptions.ValidationError):
        message = "The request is invalid; see details."
        details = _validation_details(exc.detail)
        if isinstance(details, list):
            details = {"non_field_errors": details}
    elif isinstance(exc, drf_exceptions.ParseError):
        message, details = f"Malformed request body: {exc.detail}", None
    else:
        message, details = str(getattr(exc, "detail", exc)), None

    response.data = error_body(code, message, details)
    return response


# Pages for people (the dashboard, sign-up) get HTML error pages; everything else, the API above
# all, answers in the contract's JSON.
HTML_PREFIXES = ("/dashboard/", "/signup", "/widget/demo")


def _page(request: HttpRequest, status: int, heading: str, text: str) -> HttpResponse | None:
    if not request.path.startswith(HTML_PREFIXES):
        return None
    context = {"status": status, "heading": heading, "text": text}
    return render(request, "dashboard/error.html", context, status=status)


def page_or_error(
    request: HttpRequest, status: int, message: str, *, details: Any = None
) -> HttpResponse:
    """An error for middleware that answers before any view: the HTML page on the pages for
    people, else the contract's JSON."""
    heading = {400: "Bad request", 404: "Page not found"}.get(status, "Error")
    return _page(request, status, heading, message) or error_response(
        status, message, details=details
    )


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    page = _page(request, 404, "Page not found", "There is nothing here, or it is not yours.")
    return page or error_response(404, f"No such resource: {request.path}")


def handler500(request: HttpRequest) -> HttpResponse:
    message = "An unexpected error occurred. It has been reported."
    try:
        page = _page(request, 500, "Something went wrong", message)
    except Exception:  # a failing error page must still answer
        page = None
    return page or error_response(500, message)


def handler400(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        message = f"The request body is larger than the {limit} bytes allowed."
        return _page(request, 413, "Too large", message) or error_response(413, message)
    page = _page(request, 400, "Bad request", "The request could not be understood.")
    return page or error_response(400, "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    message = "You do not have permission to perform this action."
    return _page(request, 403, "Not allowed", message) or error_response(403, message)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form posted without a valid CSRF token (an expired page, or a forged request)."""
    text = "This form has expired or did not come from this site. Go back, reload and try again."
    return _page(request, 403, "Form expired", text) or error_response(403, text)


class ErrorShapeMiddleware:
    """Errors that views return instead of raising, in the contract's shape too: Django's bare
    405 (``require_GET`` and the like: an empty body) outside the pages for people, and a DRF
    error that a view's own renderer turned into HTML or YAML under ``/api/`` (the docs)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code < 400:
            return response
        if isinstance(response, HttpResponseNotAllowed):
            if request.path.startswith(HTML_PREFIXES):
                return response
            message = f'Method "{request.method}" not allowed.'
            return error_response(405, message, headers={"Allow": response["Allow"]})
        data = getattr(response, "data", None)
        if (
            request.path.startswith("/api/")
            and isinstance(data, dict)
            and "error" in data
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            shaped = JsonResponse({"error": data["error"]}, status=response.status_code)
            for name in ("Allow", "Retry-After", "WWW-Authenticate"):
                if name in response:
                    shaped[name] = response[name]
            return shaped
        return response
