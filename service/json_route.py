"""A leaner request path for the hot JSON endpoints (``/recommend``, ``/batch_recommend``,
``/similar_items``; ``/events`` through :class:`RequestRoute`).

FastAPI's generic handler decodes the body with the stdlib ``json``, re-parses the Content-Type
with ``email.message`` and resolves the dependency graph on every request; for an endpoint of
the form ``async def f(body: SomeModel, request: Request)`` that costs more than the engine
itself. :class:`JsonBodyRoute` keeps the declared signature (so OpenAPI, the request schema and
the docs are unchanged) but handles a request by validating the raw bytes with pydantic-core's
JSON parser (``Model.model_validate_json``) and calling the endpoint directly. Errors keep the
contract: invalid JSON, a wrong Content-Type or invalid fields raise ``RequestValidationError``
(422 ``invalid_request`` in :mod:`service.errors`), with ``body`` as the first ``loc`` part as
FastAPI reports it. Routes with dependencies or any other parameter shape fall back to FastAPI's
handler. The lean handler needs nothing from the router, so :class:`service.direct.DirectRoutes`
calls it without the router's walk.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any, cast

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

_JSON_TYPES = (b"application/json",)
DIRECT_ATTR = "direct_dispatch"  # on a handler that needs nothing from the router (service.direct)


def _is_json(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media in _JSON_TYPES or (media.startswith(b"application/") and media.endswith(b"+json"))


async def _read_body(request: Request) -> bytes:
    """The whole body: what ``Request.body()`` returns, without its async generator (a JSON
    body mostly comes in one message). A disconnect before the end raises ``ClientDisconnect``,
    as Starlette does (499 in :mod:`service.errors`)."""
    receive = request.receive
    chunks: list[bytes] = []
    while True:
        message = await receive()
        kind = message["type"]
        if kind == "http.request":
            body = message.get("body", b"")
            if not message.get("more_body", False):
                return b"".join((*chunks, body)) if chunks else body
            chunks.append(body)
        elif kind == "http.disconnect":
            raise ClientDisconnect()


def _content_type(request: Request) -> bytes | None:
    for name, value in request.scope["headers"]:
        if name == b"content-type":
            return value
    return None


class JsonBodyRoute(APIRoute):
    """An ``APIRoute`` whose endpoint takes one pydantic body model and the ``Request``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        params = dependant.body_params
        model = params[0].field_info.annotation if len(params) == 1 else None
        simple = (
            isinstance(model, type)
            and issubclass(model, BaseModel)
            and not dependant.dependencies
            and not (dependant.path_params or dependant.query_params)
            and not (dependant.header_params or dependant.cookie_params)
            and dependant.request_param_name is not None
        )
        if not simple:
            return super().get_route_handler()
        body_model = cast(type[BaseModel], model)
        body_name, request_name = params[0].name, str(dependant.request_param_name)
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            content_type = _content_type(request)
            if content_type is None or not _is_json(content_type):
                raise RequestValidationError(
                    [
                        {
                            "type": "content_type",
                            "loc": ("body",),
                            "msg": "send the body as JSON with Content-Type: application/json",
                        }
                    ]
                )
            raw = await _read_body(request)
            try:
                body = body_model.model_validate_json(raw)
            except ValidationError as exc:
                errors = exc.errors(include_url=False, include_input=False)
                for error in errors:
                    error["loc"] = ("body", *error["loc"])
                raise RequestValidationError(errors) from None
            return await endpoint(**{body_name: body, request_name: request})

        setattr(handler, DIRECT_ATTR, True)
        return handler


def _request_only(dependant: Dependant) -> bool:
    """Whether ``dependant`` takes nothing but the ``Request`` (and has no sub-dependencies)."""
    return (
        dependant.request_param_name is not None
        and not dependant.dependencies
        and not dependant.body_params
        and not (dependant.path_params or dependant.query_params)
        and not (dependant.header_params or dependant.cookie_params)
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
    )


class RequestRoute(APIRoute):
    """An ``APIRoute`` for ``async def f(request: Request)`` whose dependencies (router-level
    guards such as the ingest token check) are plain sync functions of the ``Request``.

    FastAPI runs a sync dependency on a worker thread and solves the dependency graph on every
    request: on ``POST /events`` that was most of the server's time per event. This handler
    calls the guards inline (they only read headers and the environment) and then the endpoint;
    OpenAPI is unchanged. Any other shape falls back to FastAPI's handler.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant
        simple = (
            not dependant.body_params
            and dependant.request_param_name is not None
            and not (dependant.path_params or dependant.query_params)
            and not (dependant.header_params or dependant.cookie_params)
            and dependant.response_param_name is None
            and dependant.background_tasks_param_name is None
            and all(
                _request_only(sub)
                and sub.call is not None
                and not inspect.iscoroutinefunction(sub.call)
                for sub in dependant.dependencies
            )
            and inspect.iscoroutinefunction(self.endpoint)
        )
        if not simple:
            return super().get_route_handler()
        endpoint = self.endpoint
        request_name = str(dependant.request_param_name)
        checks = [(sub.call, str(sub.request_param_name)) for sub in dependant.dependencies]

        async def handler(request: Request) -> Response:
            for guard, name in checks:
                guard(**{name: request})  # type: ignore[misc]  # not None: checked above
            return await endpoint(**{request_name: request})

        setattr(handler, DIRECT_ATTR, True)
        return handler
