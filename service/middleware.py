"""One pure-ASGI middleware: request timing/metrics, the request body size limit, the drain's
``Connection: close`` and direct dispatch of the hot routes (:mod:`service.direct`).

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
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.direct import DirectRoutes
from service.errors import HTTP_CODES
from service.metrics import Metrics
from service.responses import ERROR_CODE_KEY, PATH_KEY, OrjsonResponse, error_body
from service.shutdown import Drain, closing

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
logger = logging.getLogger("service.requests")


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        status_code=413,
        detail=f"request body larger than {limit} bytes (requests.max_body_bytes); send less data",
    )


class RequestGuard:
    """Times every HTTP request into :class:`Metrics`, enforces the body size limit, says
    ``Connection: close`` while draining, and answers the hot routes through ``direct``.

    One layer for the four (it was three middleware and the direct table): each layer cost a
    coroutine call, a ``send`` wrapper and a closure per request, and a direct route's answer is
    sent here, so its status is known without wrapping ``send`` at all.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        max_body_bytes: int,
        drain: Drain | None = None,
        direct: DirectRoutes | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limit = max_body_bytes
        self.drain = drain
        self.direct = direct

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        endpoint = self.metrics.endpoint_of(scope["path"])
        found = self.direct.find(scope) if self.direct is not None else None
        status = 500
        drain = self.drain

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if drain is not None and drain.draining:
                    await closing(send)(message)
                    return
            await send(message)

        try:
            response: Response | None = None
            if scope["method"] in _BODY_METHODS:
                declared = _content_length(scope)
                if declared is not None and declared > self.limit:
                    exc = _too_large(self.limit)
                    scope[ERROR_CODE_KEY] = "body_too_large"
                    response = OrjsonResponse(error_body("body_too_large", exc.detail), 413)
                else:
                    receive = self._limited(receive)
            if response is None and found is not None:
                assert self.direct is not None  # found by it
                response = await self.direct.answer(found, scope, receive, send_wrapper)
            if response is None:
                await self.app(scope, receive, send_wrapper)
            elif drain is not None and drain.draining:
                await response(scope, receive, send_wrapper)
            else:  # the usual case: the answer's status without a send wrapper
                status = response.status_code
                await response(scope, receive, send)
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
