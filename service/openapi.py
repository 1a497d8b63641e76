"""The OpenAPI schema states the limits the running server enforces.

Request models are classes defined once, but ``topk`` ≤ ``requests.max_topk`` (and
``max_similar_topk``) and batch size ≤ ``requests.max_batch_size`` come from config, which the
engine checks. :func:`install_openapi` writes those numbers from the app's settings into the
generated schema, so that a schema-valid request is never a 422 (``make fuzz`` checks it with
schemathesis), and declares the admin token as a security scheme (Swagger UI's "Authorize").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from recommender.config.serving import ServingSettings
from service.schemas import MAX_INT_ID, MIN_INT_ID, EventIn

ADMIN_TAG = "admin"
ADMIN_SCHEMES = ("AdminToken", "AdminBearer")
CATALOGUE_TAG = "catalogue"  # PUT/PATCH /products: the admin token
EVENTS_TAG = "events"  # POST /events: the ingest token
SECURITY_SCHEMES = {
    "IngestToken": {"type": "apiKey", "in": "header", "name": "X-Ingest-Token"},
    "AdminToken": {"type": "apiKey", "in": "header", "name": "X-Admin-Token"},
    "AdminBearer": {"type": "http", "scheme": "bearer"},
}


def _integer_branches(prop: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The ``integer`` part(s) of a property schema (itself, or inside ``anyOf``)."""
    if prop.get("type") == "integer":
        yield prop
    for branch in prop.get("anyOf", ()):
        if branch.get("type") == "integer":
            yield branch


def _exact_id_bounds(node: Any) -> None:
    """FastAPI's OpenAPI models hold bounds as floats: put the integer-id bounds back exactly
    (``float(10**128 - 1)`` would admit 10**128, a 129-character id)."""
    if isinstance(node, dict):
        if node.get("type") == "integer" and node.get("maximum") == float(MAX_INT_ID):
            node["maximum"], node["minimum"] = MAX_INT_ID, MIN_INT_ID
        for value in node.values():
            _exact_id_bounds(value)
    elif isinstance(node, list):
        for value in node:
            _exact_id_bounds(value)


def _limit_topk(model: dict[str, Any], maximum: int, default: int | None) -> None:
    prop = model["properties"]["topk"]
    for branch in _integer_branches(prop):
        branch["maximum"] = maximum
    default_text = f"; default {default} (requests.default_topk)" if default is not None else ""
    prop["description"] = f"1..{maximum}{default_text}"


def apply_limits(schema: dict[str, Any], settings: ServingSettings) -> dict[str, Any]:
    """Write the config limits into ``schema`` (in place) and return it."""
    req = settings.requests
    models = schema["components"]["schemas"]
    for name in ("RecommendRequest", "BatchRecommendRequest"):
        _limit_topk(models[name], req.max_topk, req.default_topk)
    models["SimilarItemsRequest"]["properties"]["topk"]["description"] = (
        f"1..{req.max_similar_topk} (requests.max_similar_topk)"
    )
    for branch in _integer_branches(models["SimilarItemsRequest"]["properties"]["topk"]):
        branch["maximum"] = req.max_similar_topk
    user_ids = models["BatchRecommendRequest"]["properties"]["user_ids"]
    user_ids["maxItems"] = req.max_batch_size
    user_ids["description"] = f"1..{req.max_batch_size} user ids (requests.max_batch_size)"
    context = models["RecommendRequest"]["properties"]["context_items"]
    for branch in context.get("anyOf", [context]):
        if branch.get("type") == "array":
            branch["maxItems"] = req.max_context_items
    _limit_events(schema, settings.events.max_batch)
    _exact_id_bounds(schema)
    schema["components"]["securitySchemes"] = SECURITY_SCHEMES
    for operations in schema["paths"].values():
        for operation in operations.values():
            tags = operation.get("tags", ())
            if ADMIN_TAG in tags or CATALOGUE_TAG in tags:
                operation["security"] = [{name: []} for name in ADMIN_SCHEMES]
            if EVENTS_TAG in tags:
                operation["security"] = [{"IngestToken": []}]
    return schema


def _limit_events(schema: dict[str, Any], max_batch: int) -> None:
    """POST /events reads its body itself (to name the bad item): declare the event model and
    the batch limit of the running config."""
    schema["components"]["schemas"]["EventIn"] = EventIn.model_json_schema(
        ref_template="#/components/schemas/{model}"
    )
    operation = schema["paths"].get("/events", {}).get("post")
    if operation is None:
        return
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    for branch in body["anyOf"]:
        if branch.get("type") == "array":
            branch["maxItems"] = max_batch
            branch["description"] = f"1..{max_batch} events (events.max_batch)"


def install_openapi(app: FastAPI, settings: ServingSettings) -> None:
    """Make ``app.openapi()`` (``/openapi.json``, ``/docs``) return the limited schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = apply_limits(schema, settings)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
