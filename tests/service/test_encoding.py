"""Answers joined from encoded records are byte for byte orjson's encoding of the answer dicts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from recommender.events import SqliteEventStore, validate_product_update
from recommender.serving import Engine, Recommendation
from recommender.serving.ranked import Ranked
from service.encoding import AnswerMemo, RecordJson, answer_json, items_json, record_json
from service.responses import ORJSON_OPTIONS
from tests.recommender.serving.conftest import COLD, TRAINABLE, make_engine
from tests.recommender.serving.test_live_state import worker

USERS: list[str | int] = [*TRAINABLE, *COLD, "nobody", 7]
OPTIONS: list[dict[str, Any]] = [
    {},
    {"topk": 1},
    {"topk": 24, "exclude_seen": False},
    {"topk": 5, "rerank": False, "filters": {"brand": ["A"]}},
    {"topk": 5, "filters": {"brand": ["no such brand"]}},  # an empty answer
    {"topk": 5, "weights": {"popularity": 1.0, "quality": 0.5}},
    {"topk": 3, "explain": True},
]
EXTRA = {"model_id": "m1", "topk": 5, "latency_ms": 0.123}


def old_json(result: Recommendation, user_id: str | int, extra: dict[str, Any] | None) -> bytes:
    """What the routes encoded before: the answer dict, user_id as sent, then ``extra``."""
    payload = result.as_dict()
    payload["user_id"] = user_id
    payload.update(extra or {})
    return orjson.dumps(payload, option=ORJSON_OPTIONS)


@pytest.fixture(scope="module")
def engine() -> Engine:
    return make_engine()


@pytest.mark.parametrize("options", OPTIONS)
def test_single_and_batch_answers_are_the_bytes_orjson_makes_of_their_dicts(engine, options):
    table = record_json(engine)
    opts = engine.options(**options)
    batch_opts = engine.options(**{k: v for k, v in options.items() if k != "explain"})
    batch = engine.recommend_batch(USERS, batch_opts)
    for user, in_batch in zip(USERS, batch, strict=True):
        single = engine.recommend(user, opts)
        assert answer_json(single, user, table, EXTRA) == old_json(single, user, EXTRA)
        assert answer_json(in_batch, user, table) == old_json(in_batch, user, None)
        parsed = orjson.loads(answer_json(single, user, table, EXTRA))
        assert parsed["user_id"] == user and parsed["recommendations"] == single.items


def test_records_are_encoded_once_per_engine_and_used_for_plain_answers(engine):
    table = record_json(engine)
    assert record_json(engine) is table and record_json(make_engine()) is not table
    result = engine.recommend("t0", topk=4)
    table._fragments = [None] * len(table.records)  # a fresh table: count what an answer fills
    items_json(result, table)
    filled = [i for i, fragment in enumerate(table._fragments) if fragment is not None]
    assert filled == sorted(result.ranked.indices)
    explained = engine.recommend("t0", topk=4, explain=True)
    assert b'"explain"' in items_json(explained, table)


def test_a_record_with_its_own_rank_or_score_falls_back_to_its_dict(engine):
    result = engine.recommend("t0", topk=3)
    records = tuple({**r, "score": "five stars"} for r in engine.bundle.catalogue.records)
    table = RecordJson(records)
    odd = Recommendation(
        user_id="t0",
        segment=result.segment,
        ranked=type(result.ranked)(result.ranked.indices, result.ranked.scores, records),
    )
    assert items_json(odd, table) == orjson.dumps(odd.items, option=ORJSON_OPTIONS)
    assert orjson.loads(items_json(odd, table))[0]["score"] == result.ranked.scores[0]


def test_live_catalogue_updates_are_encoded_from_the_live_records(tmp_path: Path):
    with SqliteEventStore(tmp_path / "events.sqlite3", synchronous="NORMAL") as store:
        live = worker(store)
        top = live.recommend("nobody", topk=3).items[0]["product_id"]
        store.append_products([validate_product_update(top, {"price": 1.0}, replace=False)])
        result = live.recommend("nobody", topk=3)
        body = answer_json(result, "nobody", record_json(live), EXTRA)
    assert body == old_json(result, "nobody", EXTRA)
    assert orjson.loads(body)["recommendations"][0]["price"] == 1.0


@pytest.mark.parametrize("options", OPTIONS)
def test_remembered_answers_are_the_same_bytes_on_every_repeat(options):
    engine = make_engine()  # caches of its own: the first ask is a miss, the next ones hits
    table = record_json(engine)
    opts = engine.options(**options)
    for _ in range(3):
        for user in USERS:
            result = engine.recommend(user, opts)
            assert answer_json(result, user, table, EXTRA, memo=True) == old_json(
                result, user, EXTRA
            )
    remembered = len(table.answers.probation) + len(table.answers.protected)
    assert remembered == (0 if options.get("explain") else len({*USERS} - {"nobody", 7}) + 1)


def test_the_memo_keeps_repeated_answers_through_a_stream_of_one_off_ones():
    memo = AnswerMemo(probation=4, protected=2)
    hot = [Ranked([i], [0.5], ()) for i in range(3)]
    for ranked in hot:
        memo.put(ranked, b"hot")
        assert memo.get(ranked) == b"hot"  # asked again: protected
    assert memo.get(hot[0]) is None  # the oldest protected one went for the third
    for i in range(100):
        memo.put(Ranked([i], [0.1], ()), b"once")
    assert memo.get(hot[1]) == memo.get(hot[2]) == b"hot"
    assert len(memo.probation) == 4 and len(memo.protected) == 2


def test_a_new_answer_at_a_remembered_address_is_not_taken_for_the_old_one():
    memo = AnswerMemo()
    old = Ranked([1], [0.5], ())
    memo.put(old, b"old")
    other = Ranked([2], [0.5], ())
    memo.probation[id(other)] = (old, b"old")  # as if ``other`` had been allocated at old's id
    assert memo.get(other) is None
