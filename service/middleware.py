"""One pure-ASGI middleware: request timing/metrics and the request body size limit.

Pure ASGI (not ``BaseHTTPMiddleware``) because it runs on every request and must cost
microseconds. Bodies over ``requests.max_body_bytes`` get 413 — from ``Content-Length`` before
anything is read, or while streaming when the header is absent or understated.

Handlers label their request through the ASGI scope (see :mod:`service.responses`): the error
code of an error response (``ERROR_CODE_KEY``) and the recommendation path of a single
``/recommend`` (``PATH_KEY``); an unlabelled error is counted under its status's default code,
an exception that escapes every handler as ``internal_error``.
"""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import HTTP_CODES
from service.metrics import Metrics
from service.responses import ERROR_CODE_KEY, PATH_KEY, OrjsonResponse, error_body

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
logger = logging.getLogger("service.requests")


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"request body larger than {limit} bytes (requests.max_body_bytes); send less data",
    )


class RequestGuard:
    """Times every HTTP request into :class:`Metrics` and enforces the body size limit."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = self.metrics.endpoint_of(scope["path"])
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                declared = _content_length(scope)
                if declared is not None and declared > self.limit:
                    exc = _too_large(self.limit)
                    scope[ERROR_CODE_KEY] = "body_too_large"
                    response = OrjsonResponse(error_body("body_too_large", exc.detail), 413)
                    await response(scope, receive, send_wrapper)
                    return
                receive = self._limited(receive)
            await self.app(scope, receive, send_wrapper)
        except BaseException:
            # escaped every handler: a 500 from ServerErrorMiddleware unless a response started
            scope.setdefault(ERROR_CODE_KEY, "internal_error")
            raise
        finally:
            code = None
            if status >= 400:
                code = scope.get(ERROR_CODE_KEY) or HTTP_CODES.get(status, "http_error")
            seconds = time.perf_counter() - started
            self.metrics.observe(endpoint, status, seconds, code, scope.get(PATH_KEY))
            if logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "%s %s -> %d in %.2f ms (path %s, error %s)",
                    scope["method"],
                    scope["path"],
                    status,
                    seconds * 1000,
                    scope.get(PATH_KEY) or "-",
                    code or "-",
                )

    def _limited(self, receive: Receive) -> Receive:
        limit = self.limit
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)  # FastAPI re-raises HTTPException from body reading
            return message

        return limited_receive


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
