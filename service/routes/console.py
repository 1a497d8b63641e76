"""GET /console: the operator's console, three static files shipped inside the package.

The page is vanilla JS + CSS from ``service/console/`` (package data: an installed wheel has
them), so it needs no CDN, no Node step and no internet access. Each response carries a strict
Content-Security-Policy: the page may load only its own files and talk only to this service.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from starlette.responses import Response

router = APIRouter(tags=["console"], include_in_schema=False)

# Everything from this origin only; no inline script, no frames, no form posts elsewhere.
CONSOLE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
MEDIA_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


@cache
def console_file(name: str) -> bytes:
    """The bytes of one console file (read once per process from the installed package)."""
    return (resources.files("service") / "console" / name).read_bytes()


def _serve(name: str) -> Response:
    return Response(console_file(name), media_type=MEDIA_TYPES[name], headers=CONSOLE_HEADERS)


@router.get("/console")
async def console_page() -> Response:
    """The console page (model, live health, user explorer)."""
    return _serve("index.html")


@router.get("/console/console.js")
async def console_script() -> Response:
    return _serve("console.js")


@router.get("/console/console.css")
async def console_style() -> Response:
    return _serve("console.css")
