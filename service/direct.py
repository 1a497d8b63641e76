"""Direct dispatch of the hot routes: ``POST /events``, ``/recommend``, ``/batch_recommend`` and
``/similar_items`` without the router's walk.

Why: FastAPI's router (matching every route in turn, then its request/response wrapper, the
exception middleware and the exit-stack middleware around it) cost about as much server CPU per
request as the ingest itself (``scripts/profile_server.py --endpoint events``), and about a
third of an uncached ``/recommend``'s service-layer time. :class:`DirectRoutes` is consulted by
:class:`~service.middleware.RequestGuard`, the innermost user middleware (inside CORS), after it
has started the request's timing and checked the body limit — so metrics, the body limit and
draining are unchanged — and hands an exact ``(method, path)`` match straight to the route's own
lean handler
(:class:`~service.json_route.RequestRoute`: the ingest token check, then the endpoint;
:class:`~service.json_route.JsonBodyRoute`: the body validated by pydantic-core, then the
endpoint).

Errors keep the contract: an exception is answered by the app's own handler for its type
(:func:`service.errors.install_error_handlers`, looked up along the exception's MRO, as
Starlette's exception middleware does); one without a handler of its own propagates to the
server-error middleware (500), exactly as through the router. Any other method or path, or a
route whose handler is not a lean one, goes through the normal stack.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.types import Receive, Scope, Send

from service.json_route import DIRECT_ATTR

Handler = Callable[[Request], Awaitable[Response]]


class DirectRoutes:
    """The lean handlers of exact ``(method, path)`` matches of ``routes``.

    ``routes`` are the route objects of routers the app includes without a prefix or
    dependencies of their own (``service.routes.events.router.routes`` and the recommendation
    routers'); a route with path parameters or a handler that needs the router is left to the
    router. :class:`~service.middleware.RequestGuard` asks :meth:`find` for every request and
    sends what :meth:`answer` returns.
    """

    def __init__(self, routes: Iterable[BaseRoute]) -> None:
        self.table: dict[tuple[str, str], tuple[APIRoute, Handler]] = {}
        for route in routes:
            if not isinstance(route, APIRoute) or route.param_convertors:
                continue
            handler = route.get_route_handler()
            if getattr(handler, DIRECT_ATTR, False):
                for method in route.methods or ():
                    self.table.setdefault((method, route.path), (route, handler))

    def find(self, scope: Scope) -> tuple[APIRoute, Handler] | None:
        """The route and lean handler of an HTTP request's method and path, if it has one."""
        if not self.table:
            return None
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        return self.table.get((scope["method"], path))

    async def answer(
        self, found: tuple[APIRoute, Handler], scope: Scope, receive: Receive, send: Send
    ) -> Response:
        """The response of the route's handler, or of the app's handler for what it raised (an
        exception without a handler of its own propagates: the 500 middleware's)."""
        route, handler = found
        scope["route"], scope["endpoint"] = route, route.endpoint
        request = Request(scope, receive, send)
        try:
            return await handler(request)
        except Exception as exc:
            answer = _handler_for(scope["app"], exc)
            if answer is None:
                raise
            result = answer(request, exc)
            return await result if inspect.isawaitable(result) else result


def _handler_for(app: Any, exc: Exception) -> Callable[[Request, Exception], Any] | None:
    """The app's handler for ``exc`` along its MRO; ``Exception``'s own is the server-error
    middleware's (it logs and re-raises), so it is not used here."""
    handlers = getattr(app, "exception_handlers", {})
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in handlers:
            return handlers[cls]
    return None
