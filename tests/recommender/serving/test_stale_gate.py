"""The stale gate in serving: users whose newest positive is older than the gate are scored on
popularity of the gate's half-life, single and batch alike, and the profile cache keeps the two
apart. The synthetic histories run from 2024-01-01 (day 0) to 2024-01-04 (t1's 4th item)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.scoring import HybridConfig
from recommender.serving import Engine
from tests.fixtures.models import POPULARITY_ONLY
from tests.recommender.serving.conftest import COLD, TRAINABLE, make_engine

GATED = HybridConfig(
    weights=POPULARITY_ONLY, stale_after_hours=24.0, stale_popularity_half_life_days=0.5
)
DAY0 = pd.Timestamp("2024-01-01").timestamp()
KNOWN = [*TRAINABLE, *COLD]


def gated_engine(now: float) -> Engine:
    engine = make_engine(hybrid=GATED)
    engine.scorer.clock = lambda: now
    return engine


def items_of(engine: Engine, users: list[str]) -> list[list[str]]:
    return [[r[V.PRODUCT_ID] for r in engine.recommend(u, topk=5).items] for u in users]


def test_the_gate_popularity_is_the_half_life_popularity_of_the_histories():
    engine = gated_engine(DAY0)
    bundle = engine.bundle
    assert bundle.stale_model is not None
    reference = make_engine(
        hybrid=HybridConfig(weights=POPULARITY_ONLY),
        metadata={"popularity": {"half_life_days": 0.5}},
    ).bundle
    np.testing.assert_array_equal(bundle.stale_model.popularity, reference.model.popularity)
    assert not np.array_equal(bundle.stale_model.popularity, bundle.model.popularity)
    newest = bundle.histories.newest_positive_seconds
    row = bundle.histories.index["t1"]
    assert newest[row] == pd.Timestamp("2024-01-04").timestamp()


def test_recent_users_keep_the_model_popularity_and_stale_users_get_the_gates():
    plain = make_engine(hybrid=HybridConfig(weights=POPULARITY_ONLY))
    slow = make_engine(
        hybrid=HybridConfig(weights=POPULARITY_ONLY),
        metadata={"popularity": {"half_life_days": 0.5}},
    )
    # one hour after the newest interaction of the data: every user's newest positive is at
    # most 3 days + 1 h old; a gate of 24 h splits them (t1, t5: day 3 -> recent)
    now = pd.Timestamp("2024-01-04 01:00").timestamp()
    engine = gated_engine(now)
    stale = engine.scorer.stale(
        np.array([engine.bundle.histories.index[u] for u in KNOWN]), engine.bundle.model
    )
    assert dict(zip(KNOWN, stale.tolist(), strict=True)) == {
        "t0": True, "t1": False, "t2": True, "t3": True, "t4": True, "t5": False,
        "c0": True, "c1": True, "c2": True, "c3": True,
    }  # fmt: skip
    got = items_of(engine, KNOWN)
    want = [
        items_of(slow if is_stale else plain, [user])[0]
        for user, is_stale in zip(KNOWN, stale, strict=True)
    ]
    assert got == want
    assert items_of(plain, KNOWN) != items_of(slow, KNOWN)  # the gate changes answers here
    # users without history are never gated: the model's popularity
    assert items_of(engine, ["nobody"]) == items_of(plain, ["nobody"])


@pytest.mark.parametrize("now", [DAY0, pd.Timestamp("2024-01-04 01:00").timestamp(), 2e9])
def test_single_and_batch_rank_identically_under_the_gate(now):
    users = ["t0", "c1", "nobody", "t1", "c2", "t5", "t0"]
    batch = gated_engine(now).recommend_batch(users, topk=5)
    single = gated_engine(now)
    for user, result in zip(users, batch, strict=True):
        assert result.items == single.recommend(user, topk=5).items


def test_the_profile_cache_keeps_recent_and_stale_profiles_apart():
    now = [pd.Timestamp("2024-01-03 01:00").timestamp()]  # t0's newest (day 2) is 1 h old
    engine = make_engine(hybrid=GATED)
    engine.scorer.clock = lambda: now[0]
    recent = items_of(engine, ["t0"])
    now[0] = 2e9  # years later: t0 is past the gate, its cached recent profile must not answer
    stale = items_of(engine, ["t0"])
    assert recent == items_of(make_engine(hybrid=HybridConfig(weights=POPULARITY_ONLY)), ["t0"])
    assert stale == items_of(
        make_engine(
            hybrid=HybridConfig(weights=POPULARITY_ONLY),
            metadata={"popularity": {"half_life_days": 0.5}},
        ),
        ["t0"],
    )
    assert recent != stale


def test_without_a_gate_there_is_no_stale_model():
    engine = make_engine(hybrid=HybridConfig(weights=POPULARITY_ONLY))
    assert engine.bundle.stale_model is None
    rows = np.arange(len(KNOWN))
    assert not engine.scorer.stale(rows, engine.bundle.model).any()


def test_explain_shows_the_popularity_a_stale_user_was_scored_with():
    engine = gated_engine(2e9)  # every known user is past the gate
    result = engine.recommend("t0", topk=4, explain=True, rerank=False)
    stale = engine.bundle.stale_model
    assert stale is not None
    index = engine.bundle.catalogue.index
    for item in result.items:
        explain = item["explain"]
        popularity = explain["signals"][V.SIGNAL_POPULARITY]["value"]
        value = stale.static_normalised["minmax"][V.SIGNAL_POPULARITY][index[item[V.PRODUCT_ID]]]
        assert popularity == round(float(value), 6)
        assert explain["relevance"] == pytest.approx(popularity, abs=1e-4)
    plain = engine.recommend("t0", topk=4, rerank=False)  # explain ranks as the answer does
    assert [i[V.PRODUCT_ID] for i in result.items] == [i[V.PRODUCT_ID] for i in plain.items]
