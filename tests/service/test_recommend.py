"""POST /recommend and /batch_recommend over HTTP: shapes, paths, options and every bad input."""

from __future__ import annotations

import pytest

from tests.recommender.serving.conftest import COLD, N_ITEMS, TRAINABLE
from tests.service.conftest import make_client

PRODUCT_KEYS = {
    "product_id",
    "rank",
    "score",
    "name",
    "brand",
    "category",
    "price",
    "avg_rating",
    "num_ratings",
    "num_sold",
    "skin_types",
}


def ids(body) -> list[str]:
    return [item["product_id"] for item in body["recommendations"]]


@pytest.mark.parametrize(
    "user_id, segment, strategy, fallback, method",
    [
        ("t0", "trainable", "cf", False, None),
        ("c1", "cold", "content", True, "cold_hybrid"),
        (999999, "unknown", "popularity", True, "popularity"),
        ("new-visitor", "unknown", "popularity", True, "popularity"),
    ],
)
def test_recommend_paths(client, user_id, segment, strategy, fallback, method):
    response = client.post("/recommend", json={"user_id": user_id, "topk": 5})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["user_id"] == str(user_id)  # echoed in its string form
    assert (body["segment"], body["strategy"], body["is_fallback"], body["fallback_method"]) == (
        segment,
        strategy,
        fallback,
        method,
    )
    assert body["model_id"] == "m1" and body["topk"] == 5 and body["latency_ms"] >= 0
    assert len(body["recommendations"]) == 5
    assert set(body["recommendations"][0]) == PRODUCT_KEYS
    assert [item["rank"] for item in body["recommendations"]] == [1, 2, 3, 4, 5]
    scores = [item["score"] for item in body["recommendations"]]
    assert all(isinstance(s, float) for s in scores)


def test_default_topk_and_no_duplicates_no_seen(client):
    body = client.post("/recommend", json={"user_id": "t1"}).json()
    assert body["topk"] == 10 and len(ids(body)) == 10 and len(set(ids(body))) == 10
    assert not {f"p{i}" for i in TRAINABLE["t1"]} & set(ids(body))


def test_exclude_seen_false_over_http(client):
    body = client.post(
        "/recommend", json={"user_id": "c0", "topk": N_ITEMS, "exclude_seen": False}
    ).json()
    assert "p0" in ids(body) and len(ids(body)) == N_ITEMS


def test_filters_over_http(client):
    body = client.post(
        "/recommend",
        json={
            "user_id": "c0",
            "topk": 50,
            "filters": {
                "brand": ["b", "C"],
                "category": ["toner"],
                "price_max": 250000,
                "exclude_product_ids": ["p1", "p7", 12345],
            },
        },
    ).json()
    # toner = odd, brand B/C = i % 3 in {1, 2}, price <= 250k = i <= 15; minus p1, p7
    assert sorted(int(p[1:]) for p in ids(body)) == [5, 11, 13]


def test_explain_and_weights_over_http(client):
    plain = client.post("/recommend", json={"user_id": "c0", "topk": 3, "rerank": False}).json()
    assert "explain" not in plain["recommendations"][0]
    body = client.post(
        "/recommend",
        json={
            "user_id": "c0",
            "topk": 3,
            "rerank": False,
            "explain": True,
            "rerank_weights": {"popularity": 1.0, "cf": 0.5},
        },
    ).json()
    explain = body["recommendations"][0]["explain"]
    assert explain["signals"]["popularity"]["weight"] == 1.0
    assert explain["signals"]["cf"]["weight"] == 0.5
    assert explain["signals"]["item_similarity"]["weight"] == 0.0
    assert ids(body) != ids(plain)


@pytest.mark.parametrize(
    "weights",
    [
        {"cf": 1.0},
        {"popularity": 0.7, "quality": 0.3},
        {"content": 1.0, "item_similarity": 2.0},
        {"cf": 0.5, "content": 0.1, "item_similarity": 0.3, "popularity": 0.1, "quality": 0.0},
    ],
)
def test_valid_rerank_weight_configs(client, weights):
    for user in ("t2", "c3", "zz"):
        response = client.post(
            "/recommend", json={"user_id": user, "topk": 4, "rerank_weights": weights}
        )
        assert response.status_code == 200 and len(ids(response.json())) == 4


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"user_id": "t0", "rerank_weights": {"cf": -1}}, "rerank_weights.cf"),
        (
            {"user_id": "t0", "rerank_weights": {"magic": 1}},
            "unknown signal 'magic'; known signals are cf",
        ),
        ({"user_id": "t0", "rerank_weights": {"cf": 0}}, "at least one weight"),
        (
            {"user_id": "t0", "rerank_weights": {}},
            "rerank_weights: Dictionary should have at least 1",
        ),
        ({"user_id": "t0", "rerank_weights": {"cf": "high"}}, "rerank_weights"),
        ({"user_id": "t0", "topk": 0}, "topk"),
        ({"user_id": "t0", "topk": 101}, "between 1 and 100"),
        ({"user_id": "t0", "topk": "10"}, "topk"),
        ({"user_id": "t0", "topk": 2.5}, "topk"),
        ({"topk": 3}, "user_id: Field required"),
        ({"user_id": None}, "user_id"),
        ({"user_id": True}, "user_id"),
        ({"user_id": 1.5}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": ["t0"]}, "user_id"),
        ({"user_id": "t0", "exclude_seen": "yes"}, "exclude_seen"),
        ({"user_id": "t0", "filters": {"brand": "A"}}, "filters.brand"),
        ({"user_id": "t0", "filters": {"price_min": -5}}, "price_min"),
        ({"user_id": "t0", "filters": {"price_min": 9, "price_max": 1}}, "price_min"),
        ({"user_id": "t0", "filters": {"colour": ["red"]}}, "colour"),
        ({"user_id": "t0", "top_k": 5}, "top_k"),
    ],
)
def test_bad_recommend_input_is_422(client, payload, fragment):
    response = client.post("/recommend", json=payload)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert fragment in error["message"]
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"", b"[1, 2]", b'"t0"', b'{"user_id": NaN}', b"\xff\xfe"],
)
def test_malformed_bodies_are_422(client, raw):
    response = client.post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"


def test_huge_body_is_413_by_header_and_by_stream(client):
    big = b'{"user_id": "' + b"x" * 2_000_000 + b'"}'
    response = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"

    def chunks():  # no Content-Length: the limit is enforced while reading
        for _ in range(40):
            yield b"x" * 65536

    response = client.post(
        "/batch_recommend", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "body_too_large"


def test_batch_recommend(client):
    users = ["t0", "c1", 777, "t4", "c2"]
    response = client.post("/batch_recommend", json={"user_ids": users, "topk": 4})
    assert response.status_code == 200
    body = response.json()
    assert [r["user_id"] for r in body["results"]] == [str(u) for u in users]
    assert (body["count"], body["cf_users"], body["fallback_users"]) == (5, 2, 3)
    assert body["model_id"] == "m1" and body["topk"] == 4 and body["total_latency_ms"] >= 0
    for user, result in zip(users, body["results"], strict=True):
        single = client.post("/recommend", json={"user_id": user, "topk": 4}).json()
        assert result["recommendations"] == single["recommendations"]
        assert result["segment"] == single["segment"]


def test_batch_with_filters_and_weights_matches_single(client):
    options = {"topk": 6, "filters": {"skin_type": ["dry"]}, "rerank_weights": {"content": 1}}
    batch = client.post(
        "/batch_recommend", json={"user_ids": list(TRAINABLE) + list(COLD), **options}
    ).json()
    for result in batch["results"]:
        single = client.post("/recommend", json={"user_id": result["user_id"], **options}).json()
        assert ids(result) == ids(single)
        assert all(int(p[1:]) >= 12 for p in ids(result))


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ({"user_ids": []}, "user_ids"),
        ({"user_ids": "t0"}, "user_ids"),
        ({"user_ids": ["t0", None]}, "user_ids.1"),
        ({"user_ids": ["t0"], "topk": 0}, "topk"),
        ({"user_ids": ["t0"], "explain": True}, "explain"),
        ({}, "user_ids"),
    ],
)
def test_bad_batch_input_is_422(client, payload, fragment):
    response = client.post("/batch_recommend", json=payload)
    assert response.status_code == 422
    assert fragment in response.json()["error"]["message"]


def test_batch_size_limit_comes_from_config():
    with make_client(requests={"max_batch_size": 3}) as client:
        ok = client.post("/batch_recommend", json={"user_ids": ["a", "b", "c"]})
        assert ok.status_code == 200
        too_many = client.post("/batch_recommend", json={"user_ids": ["a", "b", "c", "d"]})
        assert too_many.status_code == 422
        assert "at most 3" in too_many.json()["error"]["message"]
    with make_client() as client:  # default 1000
        ok = client.post("/batch_recommend", json={"user_ids": [str(i) for i in range(1000)]})
        assert ok.status_code == 200 and ok.json()["count"] == 1000
        over = client.post("/batch_recommend", json={"user_ids": [str(i) for i in range(1001)]})
        assert over.status_code == 422


def test_options_are_parsed_once_per_model_and_values(admin_token, monkeypatch):
    """Requests without context or A/B variant share one parsed options value per model version
    and option values (filters and weights included); an invalid one is refused every time,
    never kept; a request with context is parsed every time."""
    from recommender.serving.options import RecommendOptions

    parsed: list[dict] = []
    original = RecommendOptions.parse.__func__  # type: ignore[attr-defined]

    def counting(cls, settings, **loose):  # type: ignore[no-untyped-def]
        parsed.append(loose)
        return original(cls, settings, **loose)

    monkeypatch.setattr(RecommendOptions, "parse", classmethod(counting))
    with make_client() as client:
        first = client.post("/recommend", json={"user_id": "t0", "topk": 5}).json()
        for user in ("t0", "t1", "c1", "nobody"):
            assert client.post("/recommend", json={"user_id": user, "topk": 5}).status_code == 200
        assert len(parsed) == 1
        assert (
            client.post("/batch_recommend", json={"user_ids": ["t0"], "topk": 5}).json()["results"][
                0
            ]["recommendations"]
            == first["recommendations"]
        )
        assert len(parsed) == 1  # the batch's plain options are the same value
        for _ in range(2):
            refused = client.post("/recommend", json={"user_id": "t0", "topk": 100_000})
            assert refused.status_code == 422
            assert "topk=100000" in refused.json()["error"]["message"]
        assert len(parsed) == 3
        filtered = {"user_id": "t0", "topk": 5, "filters": {"brand": ["A"]}}
        for _ in range(2):
            assert client.post("/recommend", json=filtered).status_code == 200
        assert len(parsed) == 4
        weighted = {"user_id": "t1", "topk": 5, "rerank_weights": {"cf": 1, "popularity": 0.5}}
        for _ in range(2):
            assert client.post("/recommend", json=weighted).status_code == 200
        assert len(parsed) == 5
        context = {"user_id": "new", "context_items": ["p3"]}
        for _ in range(2):
            assert client.post("/recommend", json=context).status_code == 200
        assert len(parsed) == 7
        assert client.post("/reload_model", headers=admin_token).status_code == 200
        again = client.post("/recommend", json={"user_id": "t0", "topk": 5}).json()
        assert len(parsed) == 8  # a new model version parses its own
        assert again["recommendations"] == first["recommendations"]


LOOSE_BODIES = [
    {"filters": {"brand": ["A"]}},
    {"filters": {"brand": ["a"]}},
    {"filters": {"brand": ["A", "B"], "price_max": 50}},
    {"filters": {"brand": ["B", "A"], "price_max": 50.0}},
    {"filters": {"price_min": 10, "exclude_product_ids": ["p1", 3]}},
    {"filters": {"skin_type": ["dry"]}, "rerank_weights": {"content": 1}},
    {"rerank_weights": {"cf": 1, "popularity": 0.5}},
    {"rerank_weights": {"popularity": 0.5, "cf": 1}},
    {"rerank_weights": {"cf": 1}, "topk": 3, "rerank": False, "exclude_seen": False},
    {"filters": {"category": ["x"]}, "explain": True},
]


def test_kept_options_are_what_parsing_the_request_gives():
    from service.routes import recommend as route
    from service.schemas import RecommendRequest
    from tests.recommender.serving.conftest import make_engine

    engine, fresh = make_engine(), make_engine()
    for _ in range(2):  # the second pass from what the first one kept
        for extra in LOOSE_BODIES:
            body = RecommendRequest.model_validate({"user_id": "t0", **extra})
            kept = route._options(engine, body)
            parsed = route._options(fresh, body, choice=None)
            route._LOOSE.pop(fresh, None)
            assert kept.digest == parsed.digest, extra
    assert len(route._LOOSE[engine]) == len(LOOSE_BODIES)
    for i in range(route.LOOSE_KEPT + 5):  # bounded: the oldest go first
        body = RecommendRequest.model_validate({"user_id": "t0", "filters": {"price_min": i}})
        route._options(engine, body)
    assert len(route._LOOSE[engine]) == route.LOOSE_KEPT
