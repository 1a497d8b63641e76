"""Every error becomes ``{"error": {"code", "message"}}`` with the right status, in one place.

| error | status | code |
|---|---|---|
| RequestValidationError, InvalidRequestError (JSON, types, ranges) | 422 | invalid_request |
| UnknownProductError | 404 | unknown_product |
| body over ``requests.max_body_bytes`` | 413 | body_too_large |
| BatchBusyError (no slot within ``batch.max_wait_seconds``) | 429 + Retry-After | batch_busy |
| NotReadyError / ModelLoadError (no model) | 503 | not_ready |
| StoreUnavailableError (event store down, locked, read-only, full) | 503 | store_unavailable |
| ingest token missing / wrong / unset | 401 / 403 | unauthorized / forbidden / ingest_disabled |
| admin token missing or wrong | 401 / 403 | unauthorized / forbidden |
| admin endpoints without a configured token | 403 | admin_disabled |
| unknown route / method | 404 / 405 | not_found / method_not_allowed |
| client gone mid-body (ClientDisconnect) | 499 (metrics only) | client_closed_request |
| anything else (a bug) | 500 | internal_error (no traceback in the body; logged) |
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from recommender.errors import (
    InvalidRequestError,
    ModelLoadError,
    NotReadyError,
    StoreUnavailableError,
    UnknownProductError,
)
from service.responses import OrjsonResponse, error_response

logger = logging.getLogger(__name__)

HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    499: "client_closed_request",
}
CLIENT_CLOSED = 499  # nginx's "client closed request": not a server error, not in the 5xx alert


class AdminAuthError(Exception):
    """An admin endpoint was called without a valid token (or admin is disabled)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class BatchBusyError(Exception):
    """Every batch slot of this worker stayed busy for the bounded wait (``batch.*``)."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for err in errors[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        if err.get("type") == "json_invalid":
            return "request body is not valid JSON: " + str(
                err.get("ctx", {}).get("error", err["msg"])
            )
        parts.append(f"{loc}: {err.get('msg')}")
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _clean_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validation details without echoing the (possibly huge) input back."""
    return [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg"), "type": e.get("type")}
        for e in errors[:20]
    ]


async def _validation(request: Request, exc: RequestValidationError) -> OrjsonResponse:
    errors = list(exc.errors())
    return error_response(
        request, 422, "invalid_request", _describe(errors), details=_clean_errors(errors)
    )


async def _invalid(request: Request, exc: InvalidRequestError) -> OrjsonResponse:
    return error_response(request, 422, "invalid_request", str(exc))


async def _unknown_product(request: Request, exc: UnknownProductError) -> OrjsonResponse:
    return error_response(request, 404, "unknown_product", str(exc))


async def _not_ready(request: Request, exc: Exception) -> OrjsonResponse:
    return error_response(request, 503, "not_ready", str(exc))


async def _store_unavailable(request: Request, exc: StoreUnavailableError) -> OrjsonResponse:
    message = f"event store unavailable, nothing was stored: {exc}; retry with the same event_id"
    return error_response(request, 503, "store_unavailable", message, reason=exc.reason)


async def _batch_busy(request: Request, exc: BatchBusyError) -> OrjsonResponse:
    headers = {"Retry-After": str(exc.retry_after_seconds)}
    return error_response(request, 429, "batch_busy", str(exc), headers=headers)


async def _admin(request: Request, exc: AdminAuthError) -> OrjsonResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(request, exc.status, exc.code, exc.message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method the OpenAPI schema lists for the route that answered 405: Starlette names
    only that route's own (PUT and PATCH /products/{id} are two routes)."""
    route = request.scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    operations = request.app.openapi().get("paths", {}).get(path, {}) if path else {}
    return ", ".join(sorted(method.upper() for method in operations))


async def _http(request: Request, exc: StarletteHTTPException) -> OrjsonResponse:
    code = HTTP_CODES.get(exc.status_code, "http_error")
    headers = exc.headers
    if exc.status_code == 405:
        allowed = _allowed_methods(request)
        if allowed:
            headers = {**(headers or {}), "Allow": allowed}
    return error_response(request, exc.status_code, code, str(exc.detail), headers=headers)


async def _client_closed(request: Request, exc: ClientDisconnect) -> OrjsonResponse:
    """The client went away mid-body: one log line, and a 499 that only the metrics see."""
    logger.info(
        "client closed the connection before sending the whole body: %s %s",
        request.method,
        request.url.path,
    )
    return error_response(
        request, CLIENT_CLOSED, "client_closed_request", "client closed the connection"
    )


async def _internal(request: Request, exc: Exception) -> OrjsonResponse:
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(
        request, 500, "internal_error", "internal server error; the incident is logged"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the mapping above on ``app``."""
    handlers: list[tuple[type[Exception], Any]] = [
        (RequestValidationError, _validation),
        (InvalidRequestError, _invalid),
        (UnknownProductError, _unknown_product),
        (BatchBusyError, _batch_busy),
        (NotReadyError, _not_ready),
        (ModelLoadError, _not_ready),
        (StoreUnavailableError, _store_unavailable),
        (AdminAuthError, _admin),
        (StarletteHTTPException, _http),
        (ClientDisconnect, _client_closed),
        (Exception, _internal),
    ]
    # Starlette types handlers as taking ``Exception``; each of ours takes its own subclass
    for exc_type, handler in handlers:
        app.add_exception_handler(exc_type, handler)
