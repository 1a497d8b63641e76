"""Fast JSON responses: orjson straight to bytes (numpy scalars and arrays included).

:class:`OrjsonResponse` subclasses FastAPI's ``JSONResponse`` so that routes declaring a
``response_model`` keep that model in the OpenAPI schema, while the body is rendered by orjson.
Routes return an ``OrjsonResponse`` instance, so FastAPI neither validates nor re-serialises the
pre-shaped payload through the response model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
ERROR_CODE_KEY = "recsys.error_code"  # ASGI scope key: the error code of an error response
PATH_KEY = "recsys.path"  # ASGI scope key: the recommendation path of a single /recommend


class OrjsonResponse(JSONResponse):
    """``application/json`` rendered by orjson (UTF-8, Vietnamese text kept as is)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=ORJSON_OPTIONS)


class JsonBytesResponse(Response):
    """A 200 of already-encoded JSON: what ``Response(content, media_type="application/json")``
    sends (the same two headers in the same order), without building them per call."""

    media_type = "application/json"

    def __init__(self, content: bytes) -> None:  # noqa: D107
        self.status_code = 200
        self.background = None
        self.body = content
        self.raw_headers = [
            (b"content-length", b"%d" % len(content)),
            (b"content-type", b"application/json"),
        ]


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    """The one error shape: ``{"error": {"code", "message", ...}}``."""
    return {"error": {"code": code, "message": message, **extra}}


def error_response(
    request: Request,
    status_code: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> OrjsonResponse:
    """An error response, its ``code`` also noted on the request for the error metrics."""
    request.scope[ERROR_CODE_KEY] = code
    return OrjsonResponse(error_body(code, message, **extra), status_code, headers=headers)
