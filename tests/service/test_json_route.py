"""JsonBodyRoute: validating raw bytes on the hot endpoints keeps the HTTP contract and schema."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from service.errors import install_error_handlers
from service.json_route import JsonBodyRoute, RequestRoute
from service.responses import OrjsonResponse


class Echo(BaseModel):
    value: int


def _echo_app() -> FastAPI:
    router = APIRouter(route_class=JsonBodyRoute)

    @router.post("/fast")
    async def fast(body: Echo, request: Request) -> OrjsonResponse:
        return OrjsonResponse({"value": body.value, "path": request.url.path})

    @router.post("/query")
    async def with_query(body: Echo, factor: int = 2) -> OrjsonResponse:
        return OrjsonResponse({"value": body.value * factor})

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


def test_fast_path_and_fallback_behave_alike():
    with TestClient(_echo_app()) as client:
        assert client.post("/fast", json={"value": 3}).json() == {"value": 3, "path": "/fast"}
        # a query parameter is not handled by the fast path: FastAPI's own handler serves it
        assert client.post("/query?factor=5", json={"value": 3}).json() == {"value": 15}
        for path in ("/fast", "/query"):
            error = client.post(path, json={"value": "x"}).json()["error"]
            assert error["code"] == "invalid_request" and error["details"][0]["loc"] == [
                "body",
                "value",
            ]


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/x+json"]
)
def test_json_content_types_accepted(client, content_type):
    response = client.post(
        "/recommend",
        content=b'{"user_id": "t0", "topk": 3}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 200 and len(response.json()["recommendations"]) == 3


@pytest.mark.parametrize("headers", [{"content-type": "text/plain"}, {}])
def test_non_json_content_type_is_422(client, headers):
    response = client.post("/recommend", content=b'{"user_id": "t0"}', headers=headers)
    assert response.status_code == 422
    error = response.json()["error"]
    assert (
        error["code"] == "invalid_request" and "Content-Type: application/json" in error["message"]
    )


def test_invalid_json_message_and_field_locations(client):
    response = client.post(
        "/recommend", content=b'{"user_id": "t0",', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("request body is not valid JSON")
    details = client.post("/similar_items", json={"product_id": "p1", "topk": 0}).json()
    assert details["error"]["details"][0]["loc"] == ["body", "topk"]
    assert details["error"]["message"].startswith("topk: Input should be greater than or equal")


def test_openapi_keeps_request_and_response_models(client):
    schema = client.get("/openapi.json").json()
    for path, request, response in (
        ("/recommend", "RecommendRequest", "RecommendResponse"),
        ("/batch_recommend", "BatchRecommendRequest", "BatchRecommendResponse"),
        ("/similar_items", "SimilarItemsRequest", "SimilarItemsResponse"),
    ):
        operation = schema["paths"][path]["post"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body == {"$ref": f"#/components/schemas/{request}"}
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{response}"}
    health = schema["paths"]["/health"]["get"]["responses"]["200"]["content"]
    assert health["application/json"]["schema"] == {"$ref": "#/components/schemas/HealthResponse"}
    stats = schema["paths"]["/stats"]["get"]["responses"]["200"]["content"]
    assert stats["application/json"]["schema"] == {"$ref": "#/components/schemas/StatsResponse"}


def _guarded_app(calls: list[tuple[str, int]]) -> FastAPI:
    import threading

    from fastapi import Depends, HTTPException

    def guard(request: Request) -> None:
        calls.append(("guard", threading.get_ident()))
        if request.headers.get("x-token") != "ok":
            raise HTTPException(status_code=403, detail="token")

    router = APIRouter(route_class=RequestRoute, dependencies=[Depends(guard)])

    @router.post("/lean")
    async def lean(request: Request) -> OrjsonResponse:
        calls.append(("endpoint", threading.get_ident()))
        return OrjsonResponse({"body": (await request.body()).decode()}, status_code=202)

    @router.post("/with-query")
    async def with_query(request: Request, factor: int = 2) -> OrjsonResponse:
        return OrjsonResponse({"factor": factor})

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router)
    return app


def test_request_route_runs_a_sync_guard_inline_not_on_a_worker_thread():
    """FastAPI would run the sync guard on a thread per request (most of POST /events' cost)."""
    calls: list[tuple[str, int]] = []
    with TestClient(_guarded_app(calls)) as client:
        response = client.post("/lean", content=b"abc", headers={"x-token": "ok"})
        assert (response.status_code, response.json()) == (202, {"body": "abc"})
        assert [name for name, _ in calls] == ["guard", "endpoint"]
        assert calls[0][1] == calls[1][1]  # one thread: the event loop's
        calls.clear()
        refused = client.post("/lean", content=b"abc")
        assert refused.status_code == 403 and [name for name, _ in calls] == ["guard"]
        # another parameter shape falls back to FastAPI's handler, guard included
        assert client.post("/with-query?factor=3", headers={"x-token": "ok"}).json() == {
            "factor": 3
        }
        assert client.post("/with-query?factor=3").status_code == 403


def test_request_route_keeps_the_openapi_schema():
    calls: list[tuple[str, int]] = []
    plain = FastAPI()
    plain_router = APIRouter()

    @plain_router.post("/lean")
    async def lean(request: Request) -> OrjsonResponse:
        return OrjsonResponse({})

    plain.include_router(plain_router)
    lean_paths = _guarded_app(calls).openapi()["paths"]["/lean"]
    assert lean_paths == plain.openapi()["paths"]["/lean"]
