"""New products (PUT, unknown to the model) are recommendable at once: content + live popularity.

The synthetic bundle has no fitted encoder, so these engines embed a new product's text with a
stand-in that maps "twin of pJ" to product J's embedding: exact cosines, and the plumbing
(text -> embedding -> every path) is what is tested. tests/service/test_new_products_live.py
runs the real TF-IDF encoder on real servers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import EventsSettings, ServingSettings
from recommender.errors import InvalidRequestError
from recommender.events import SqliteEventStore, validate_events, validate_product_update
from recommender.scoring import normalise
from recommender.serving import Engine, LiveFeed, LiveState
from recommender.serving.new_products import product_text
from tests.recommender.serving.conftest import N_ITEMS, make_engine

SETTINGS = EventsSettings(popularity_refresh_seconds=0)
CONTENT_ONLY = {V.SIGNAL_CONTENT: 1.0}


@pytest.fixture()
def store(tmp_path: Path):
    with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as s:
        yield s


class TwinEmbedder:
    """Text mentioning "twin of pJ" -> product J's embedding; counts its calls."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self.embeddings = embeddings
        self.calls: list[list[str]] = []

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        rows = []
        for text in texts:
            found = re.search(r"twin of p(\d+)", text.casefold())
            rows.append(
                self.embeddings[int(found.group(1))]
                if found
                else np.zeros(self.embeddings.shape[1], np.float32)
            )
        return np.array(rows, dtype=np.float32)


def worker(store, settings: EventsSettings = SETTINGS) -> tuple[Engine, TwinEmbedder]:
    engine = make_engine(ServingSettings(events=settings))
    assert engine.bundle.model.embeddings is not None
    embed = TwinEmbedder(engine.bundle.model.embeddings)
    live = LiveState(engine.bundle, settings, embed=embed)
    feed = LiveFeed(store, settings)
    feed.attach(live)
    engine.live, engine.feed = live, feed
    return engine, embed


def put(store, product_id: str, **fields: Any) -> int:
    body = {"name": "x", "brand": "A", "category": "serum", "price": 150_000, **fields}
    [seq] = store.append_products([validate_product_update(product_id, body, replace=True)])
    return seq


def patch(store, product_id: str, **fields: Any) -> int:
    [seq] = store.append_products([validate_product_update(product_id, fields, replace=False)])
    return seq


def post(store, *events: dict[str, Any]) -> list[int]:
    return store.append(validate_events(list(events), max_batch=100, clock_skew_seconds=300))


def ids(result) -> list[str]:
    return [item["product_id"] for item in result.items]


def test_a_new_product_is_embedded_once_and_served_to_a_matching_content_profile(store):
    engine, embed = worker(store)
    put(store, "new-1", name="Twin of p5", brand="B", price=123_000)
    result = engine.recommend("c1", topk=3, weights=CONTENT_ONLY)  # c1's history is p5
    assert result.items[0] == {
        V.PRODUCT_ID: "new-1",
        V.NAME: "Twin of p5",
        V.BRAND: "B",
        V.CATEGORY: "serum",
        V.PRICE: 123_000,
        V.AVG_RATING: None,
        V.NUM_RATINGS: 0,
        V.NUM_SOLD: 0,
        V.SKIN_TYPES: [],
        "rank": 1,
        "score": 1.0,  # cosine 1 with the profile: the top of the min-max range
    }
    assert embed.calls == [
        [product_text({"name": "Twin of p5", "brand": "B", "category": "serum"})]
    ]
    # the hybrid under the model's cold weights ranks it too, and a batch ranks it alike
    hybrid = engine.recommend("c1", topk=N_ITEMS + 1)
    assert "new-1" in ids(hybrid)
    [batch] = engine.recommend_batch(["c1"], topk=N_ITEMS + 1)
    assert ids(batch) == ids(hybrid)
    assert engine.live is not None and engine.live.stats()["new_products"] == 1
    assert len(embed.calls) == 1  # on the write path only, never per request


def test_filters_apply_to_new_products(store):
    engine, _ = worker(store)
    put(store, "new-1", name="Twin of p5", brand="B", price=123_000, skin_types=["dry"])

    def top(**filters: Any) -> list[str]:
        return ids(engine.recommend("c1", topk=3, weights=CONTENT_ONLY, filters=filters))

    assert top(price_max=130_000)[0] == "new-1"
    assert "new-1" not in top(price_max=120_000)
    assert "new-1" not in top(price_min=124_000)
    assert top(brand=["b"])[0] == "new-1"
    assert "new-1" not in top(brand=["A"])
    assert "new-1" not in top(category=["toner"])
    assert top(skin_type=["DRY"])[0] == "new-1"
    assert "new-1" not in top(exclude_product_ids=["new-1"])
    patch(store, "new-1", price=99_000)  # a price change is honoured at once
    assert top(price_max=100_000)[0] == "new-1"


def test_unavailable_new_product_leaves_every_answer_of_every_worker(store):
    first, _ = worker(store)
    second, _ = worker(store)
    put(store, "new-1", name="Twin of p5")
    assert ids(second.recommend("c1", topk=1, weights=CONTENT_ONLY)) == ["new-1"]
    assert "new-1" in ids(second.similar_items("p5", topk=3, method=V.SIMILARITY_CONTENT))
    patch(store, "new-1", available=False)
    for engine in (first, second):
        assert "new-1" not in ids(engine.recommend("c1", topk=N_ITEMS, weights=CONTENT_ONLY))
        assert "new-1" not in ids(engine.similar_items("p5", topk=10, method="content"))
        assert engine.live is not None and engine.live.stats()["unavailable_products"] == 1
    patch(store, "new-1", available=True)
    assert ids(first.recommend("c1", topk=1, weights=CONTENT_ONLY)) == ["new-1"]


def test_similar_items_of_and_to_a_new_product(store):
    engine, _ = worker(store)
    put(store, "new-1", name="Twin of p5")
    as_query = engine.similar_items("new-1", topk=2)
    assert as_query.method == V.SIMILARITY_CONTENT
    assert [(i["product_id"], i["score"]) for i in as_query.items][:1] == [("p5", 1.0)]
    assert "new-1" not in ids(as_query)
    neighbour = engine.similar_items("p5", topk=2, method=V.SIMILARITY_CONTENT)
    assert (neighbour.items[0]["product_id"], neighbour.items[0]["score"]) == ("new-1", 1.0)
    plain = make_engine().similar_items("p5", topk=1, method=V.SIMILARITY_CONTENT)
    assert neighbour.items[1]["product_id"] == plain.items[0]["product_id"]
    with pytest.raises(InvalidRequestError, match="no CF factors yet"):
        engine.similar_items("new-1", method=V.SIMILARITY_CF)
    # a PATCH of the name re-embeds it
    patch(store, "new-1", name="Twin of p7")
    assert engine.similar_items("new-1", topk=1).items[0]["product_id"] == "p7"


def test_events_naming_a_new_product_give_it_popularity_and_explain_shows_it(store):
    engine, _ = worker(store)
    put(store, "new-1", name="Twin of p5")
    assert "new-1" not in ids(engine.recommend("nobody", topk=5))
    post(
        store,
        *({"user_id": f"buyer{i}", "product_id": "new-1", "type": "purchase"} for i in range(6)),
    )
    answer = engine.recommend("nobody", topk=3, explain=True)
    assert answer.segment == V.SEGMENT_UNKNOWN
    assert ids(answer)[0] == "new-1"
    assert engine.live is not None
    popularity = engine.live.popularity()
    assert popularity is not None and popularity.shape == (N_ITEMS + 1,)
    explained = answer.items[0]["explain"]
    expected = float(normalise(popularity, "minmax")[N_ITEMS])
    assert explained["signals"][V.SIGNAL_POPULARITY]["value"] == round(expected, 6)
    total = sum(part["contribution"] for part in explained["signals"].values())
    assert round(total, 5) == round(explained["relevance"], 5) == round(answer.items[0]["score"], 5)
    # the buyers' own history holds the new product: they are cold, and never get it back
    buyer = engine.recommend("buyer0", topk=N_ITEMS, explain=True)
    assert buyer.segment == V.SEGMENT_COLD and "new-1" not in ids(buyer)
    content = buyer.items[0]["explain"]["signals"][V.SIGNAL_CONTENT]
    assert content["value"] > 0  # the profile is the new product's embedding


def test_explain_of_a_cold_user_shows_the_new_products_content_as_scored(store):
    engine, _ = worker(store)
    put(store, "new-1", name="Twin of p5")
    answer = engine.recommend("c1", topk=N_ITEMS + 1, explain=True)
    [entry] = [item for item in answer.items if item[V.PRODUCT_ID] == "new-1"]
    signals = entry["explain"]["signals"]
    assert signals[V.SIGNAL_CONTENT]["value"] == 1.0
    assert signals[V.SIGNAL_CF]["weight"] > 0
    total = sum(part["contribution"] for part in signals.values())
    assert round(total, 5) == round(entry["score"], 5)


def test_restart_replays_new_products_and_their_events(store):
    engine, _ = worker(store)
    put(store, "new-1", name="Twin of p5")
    post(store, {"user_id": "v", "product_id": "new-1", "type": "view"})
    before = engine.recommend("v", topk=5)
    restarted, embed = worker(store)
    after = restarted.recommend("v", topk=5)
    assert (
        (after.segment, ids(after))
        == (before.segment, ids(before))
        == (
            V.SEGMENT_COLD,
            ids(before),
        )
    )
    assert len(embed.calls) == 1  # the replay embeds each product once


def test_new_products_beyond_the_limit_are_remembered_not_served(store):
    settings = EventsSettings(popularity_refresh_seconds=0, max_new_products=1)
    engine, _ = worker(store, settings)
    put(store, "new-1", name="Twin of p5")
    put(store, "new-2", name="Twin of p5")
    engine.sync_live()
    assert engine.live is not None
    assert engine.live.knows_product("new-2")  # events may name it
    assert (
        engine.live.stats()["new_products"],
        engine.live.stats()["new_products_not_served"],
    ) == (
        1,
        1,
    )
    assert ids(engine.recommend("c1", topk=1, weights=CONTENT_ONLY)) == ["new-1"]


def test_remove_from_cart_cancels_the_cart(store):
    engine, _ = worker(store)
    post(store, {"user_id": "shopper", "product_id": "p3", "type": "cart"})
    carted = engine.recommend("shopper", topk=N_ITEMS)
    assert carted.segment == V.SEGMENT_COLD and "p3" not in ids(carted)  # cart is seen
    post(store, {"user_id": "shopper", "product_id": "p3", "type": "remove_from_cart"})
    removed = engine.recommend("shopper", topk=N_ITEMS)
    # the cart was the only evidence: no live positive left, p3 may be recommended again
    assert removed.segment == V.SEGMENT_UNKNOWN and "p3" in ids(removed)
    assert engine.live is not None
    live_user = engine.live.user("shopper")
    assert live_user is not None and live_user.liked.tolist() == [] == live_user.seen.tolist()


def test_remove_from_cart_keeps_other_evidence(store):
    engine, _ = worker(store)
    post(
        store,
        {"user_id": "s", "product_id": "p3", "type": "view"},
        {"user_id": "s", "product_id": "p3", "type": "cart"},
        {"user_id": "s", "product_id": "p4", "type": "purchase"},
        {"user_id": "s", "product_id": "p4", "type": "cart"},
        {"user_id": "s", "product_id": "p4", "type": "remove_from_cart"},
        {"user_id": "s", "product_id": "p3", "type": "remove_from_cart"},
        {"user_id": "s", "product_id": "p9", "type": "remove_from_cart"},  # never carted
    )
    engine.sync_live()
    assert engine.live is not None
    live_user = engine.live.user("s")
    assert live_user is not None
    # p3: the view is still a positive, but nothing hides it any more; p4: bought, stays seen
    assert live_user.liked.tolist() == [3, 4]
    assert live_user.seen.tolist() == [4, 4]
    answer = engine.recommend("s", topk=N_ITEMS)
    assert "p3" in ids(answer) and "p4" not in ids(answer)


def test_explain_shows_live_popularity_of_a_known_product_as_scored(store):
    engine, _ = worker(store)
    post(store, *({"user_id": f"b{i}", "product_id": "p20", "type": "purchase"} for i in range(5)))
    answer = engine.recommend("nobody", topk=1, explain=True)
    assert ids(answer) == ["p20"]
    assert engine.live is not None
    popularity = engine.live.popularity()
    assert popularity is not None
    signals = answer.items[0]["explain"]["signals"]
    expected = round(float(normalise(popularity, "minmax")[20]), 6)
    assert signals[V.SIGNAL_POPULARITY]["value"] == expected == 1.0
    total = sum(part["contribution"] for part in signals.values())
    assert round(total, 5) == round(answer.items[0]["score"], 5)
