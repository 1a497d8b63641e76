"""Request validation at the schema: ids normalised to strings, strict numbers, bounded weights,
and an OpenAPI schema that states the limits of the running settings (issue 10)."""

from __future__ import annotations

import pytest

from recommender import vocabulary as V
from service.schemas import MAX_INT_ID, MIN_INT_ID
from tests.service.conftest import ADMIN_ENV, make_client

HUGE = 100_000_000_000_000_000_000  # beyond 64 bits: orjson could not echo it (500)
ID_RULE = (
    "an id must be a string of 1..128 characters (not only spaces) or an integer, "
    "which is converted to its decimal string of at most 128 characters"
)


def _error(response) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    return error["message"]


@pytest.mark.parametrize(
    "sent, echoed",
    [
        (HUGE, "100000000000000000000"),
        (-HUGE, "-100000000000000000000"),
        (MAX_INT_ID, "9" * 128),
        (MIN_INT_ID, "-" + "9" * 127),
        (7.0, "7"),  # JSON Schema counts 7.0 as an integer
        ("  spaced  ", "spaced"),
        ("x" * 128, "x" * 128),
    ],
)
def test_ids_are_echoed_in_their_string_form(client, sent, echoed):
    body = client.post("/recommend", json={"user_id": sent, "topk": 2}).json()
    assert body["user_id"] == echoed and body["strategy"] == "popularity"
    batch = client.post("/batch_recommend", json={"user_ids": [sent, "t0"], "topk": 2}).json()
    assert [r["user_id"] for r in batch["results"]] == [echoed, "t0"]
    similar = client.post("/similar_items", json={"product_id": sent, "topk": 2})
    assert similar.status_code == 404 and echoed in similar.json()["error"]["message"]
    excluded = client.post(
        "/recommend", json={"user_id": "t0", "filters": {"exclude_product_ids": [sent, "p1"]}}
    )
    assert excluded.status_code == 200


@pytest.mark.parametrize(
    "sent, message",
    [
        (MAX_INT_ID + 1, f"user_id: Value error, integer id too long: {ID_RULE}"),
        (MIN_INT_ID - 1, f"user_id: Value error, integer id too long: {ID_RULE}"),
        ("x" * 129, f"user_id: Value error, {ID_RULE}"),
        ("   ", f"user_id: Value error, {ID_RULE}"),
        (True, f"user_id: Value error, {ID_RULE}"),
        (1.5, f"user_id: Value error, {ID_RULE}"),
        (1e20, "user_id: Value error, an integer id written as a float beyond 2**53 is not exact"),
    ],
)
def test_bad_ids_are_422_with_the_rule(client, sent, message):
    assert _error(client.post("/recommend", json={"user_id": sent})).startswith(message)
    batch = client.post("/batch_recommend", json={"user_ids": ["t0", sent]})
    assert _error(batch).startswith(message.replace("user_id:", "user_ids.1:"))
    similar = client.post("/similar_items", json={"product_id": sent})
    assert _error(similar).startswith(message.replace("user_id:", "product_id:"))
    excluded = client.post(
        "/recommend", json={"user_id": "t0", "filters": {"exclude_product_ids": [sent]}}
    )
    assert _error(excluded).startswith(
        message.replace("user_id:", "filters.exclude_product_ids.0:")
    )


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"filters": {"price_min": "100"}}, "filters.price_min: Input should be a valid number"),
        ({"filters": {"price_max": True}}, "filters.price_max: Input should be a valid number"),
        ({"rerank_weights": {"cf": True}}, "rerank_weights.cf: Input should be a valid number"),
        ({"rerank_weights": {"cf": " 2.5 "}}, "rerank_weights.cf: Input should be a valid number"),
        ({"topk": "5"}, "topk: Input should be a valid integer"),
        ({"topk": True}, "topk: Input should be a valid integer"),
        ({"topk": 2.5}, "topk: Input should be a valid integer"),
    ],
)
def test_numbers_are_strict(client, payload, message):
    assert _error(client.post("/recommend", json={"user_id": "t0", **payload})) == message


def test_integers_for_floats_and_whole_floats_for_integers_are_fine(client):
    response = client.post(
        "/recommend",
        json={"user_id": "t0", "topk": 3.0, "filters": {"price_min": 0, "price_max": 10**6}},
    )
    assert response.status_code == 200 and response.json()["topk"] == 3
    similar = client.post("/similar_items", json={"product_id": "p3", "topk": 2.0})
    assert similar.status_code == 200 and similar.json()["topk"] == 2


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"cf": 1e33}, "rerank_weights.cf: Input should be less than or equal to 1000"),
        ({"cf": 1, "quality": 1000.5}, "rerank_weights.quality: Input should be less than or"),
        ({"cf": -0.5}, "rerank_weights.cf: Input should be greater than or equal to 0"),
        (
            {"magic": 1},
            "rerank_weights.magic.[key]: Value error, unknown signal 'magic'; known signals "
            "are cf, content, item_similarity, popularity, quality",
        ),
        ({"cf": 0, "quality": 0}, "body: Value error, rerank_weights: at least one weight"),
    ],
)
def test_weights_are_bounded_and_name_the_key(client, weights, message):
    for path, ids in (
        ("/recommend", {"user_id": "t0"}),
        ("/batch_recommend", {"user_ids": ["t0"]}),
    ):
        response = client.post(path, json={**ids, "rerank_weights": weights})
        assert _error(response).startswith(message)


@pytest.mark.parametrize("user", ["t0", "c0", "visitor"])
def test_largest_allowed_weights_still_answer(client, user):
    weights = dict.fromkeys(V.SIGNALS, 1000)
    body = client.post("/recommend", json={"user_id": user, "topk": 4, "rerank_weights": weights})
    assert body.status_code == 200 and len(body.json()["recommendations"]) == 4


def _schemas(client) -> dict:
    return client.get("/openapi.json").json()["components"]["schemas"]


def _int_branch(prop: dict) -> dict:
    return next(b for b in prop.get("anyOf", [prop]) if b.get("type") == "integer")


@pytest.mark.parametrize(
    "requests, expected",
    [
        ({}, (100, 50, 1000)),
        ({"max_topk": 20, "max_similar_topk": 7, "max_batch_size": 3}, (20, 7, 3)),
    ],
)
def test_openapi_states_the_configured_limits(requests, expected):
    max_topk, max_similar, max_batch = expected
    with make_client(requests=requests) as client:
        schemas = _schemas(client)
        for name in ("RecommendRequest", "BatchRecommendRequest"):
            topk = _int_branch(schemas[name]["properties"]["topk"])
            assert (topk["minimum"], topk["maximum"]) == (1, max_topk)
        similar = _int_branch(schemas["SimilarItemsRequest"]["properties"]["topk"])
        assert (similar["minimum"], similar["maximum"]) == (1, max_similar)
        user_ids = schemas["BatchRecommendRequest"]["properties"]["user_ids"]
        assert (user_ids["minItems"], user_ids["maxItems"]) == (1, max_batch)
        # the stated limits are the enforced ones: the bound passes, one above is a 422
        ok = client.post("/recommend", json={"user_id": "t0", "topk": max_topk})
        assert ok.status_code == 200
        over = client.post("/recommend", json={"user_id": "t0", "topk": max_topk + 1})
        assert over.status_code == 422
        assert (
            client.post("/batch_recommend", json={"user_ids": ["t0"] * (max_batch + 1)}).status_code
            == 422
        )
        similar_ok = client.post("/similar_items", json={"product_id": "p3", "topk": max_similar})
        assert similar_ok.status_code == 200


def test_openapi_states_id_and_weight_rules(client):
    schemas = _schemas(client)
    user_id = schemas["RecommendRequest"]["properties"]["user_id"]
    string, integer = user_id["anyOf"]
    assert string == {"type": "string", "minLength": 1, "maxLength": 128, "pattern": r"\S"}
    assert (integer["minimum"], integer["maximum"]) == (MIN_INT_ID, MAX_INT_ID)  # exact ints
    weights = schemas["RecommendRequest"]["properties"]["rerank_weights"]["anyOf"][0]
    assert weights["propertyNames"] == {"enum": list(V.SIGNALS)}
    assert weights["additionalProperties"] == {"type": "number", "minimum": 0, "maximum": 1000}
    assert weights["minProperties"] == 1
    assert [branch["required"] for branch in weights["anyOf"]] == [[s] for s in V.SIGNALS]


def test_admin_operations_declare_the_token(client):
    spec = client.get("/openapi.json").json()
    schemes = {"AdminToken", "AdminBearer", "IngestToken"}
    assert set(spec["components"]["securitySchemes"]) == schemes
    for path in ("/reload_model", "/cache_clear", "/cache_warmup"):
        assert spec["paths"][path]["post"]["security"] == [{"AdminToken": []}, {"AdminBearer": []}]
    for method in ("put", "patch"):
        security = spec["paths"]["/products/{product_id}"][method]["security"]
        assert security == [{"AdminToken": []}, {"AdminBearer": []}]
    assert spec["paths"]["/events"]["post"]["security"] == [{"IngestToken": []}]
    assert "security" not in spec["paths"]["/recommend"]["post"]


def test_every_returned_status_is_documented(client, monkeypatch):
    """The statuses each operation can answer (besides 405) appear in its OpenAPI responses."""
    monkeypatch.setenv(ADMIN_ENV, "t")
    paths = client.get("/openapi.json").json()["paths"]
    expected = {
        ("/recommend", "post"): {"200", "413", "422", "503"},
        ("/batch_recommend", "post"): {"200", "413", "422", "503"},
        ("/similar_items", "post"): {"200", "404", "413", "422", "503"},
        ("/health", "get"): {"200", "503"},
        ("/model_info", "get"): {"200", "503"},
        ("/cache_stats", "get"): {"200", "503"},
        ("/reload_model", "post"): {"200", "401", "403", "413", "503"},
        ("/cache_clear", "post"): {"200", "401", "403", "413", "503"},
        ("/cache_warmup", "post"): {"200", "401", "403", "413", "503"},
        ("/events", "post"): {"202", "401", "403", "413", "422", "503"},
        ("/products/{product_id}", "put"): {"200", "401", "403", "413", "422", "503"},
        ("/products/{product_id}", "patch"): {"200", "401", "403", "404", "413", "422", "503"},
    }
    for (path, method), statuses in expected.items():
        assert statuses <= set(paths[path][method]["responses"]), (path, method)
