"""The context evaluation scores what the engine serves with context_items (issue 13 item 4)."""

from __future__ import annotations

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.config.training import EvaluationSettings
from recommender.evaluation.context import (
    ROW_ANONYMOUS_CONTEXT,
    ROW_CF_FULL,
    ROW_CF_REFOLD,
    ROW_CONTEXT,
    ROW_FULL,
    evaluate_context,
    format_context_report,
    previous_items,
    served_with_context,
    with_context,
)
from recommender.evaluation.protocol import EvaluationSet
from recommender.scoring import HybridConfig
from tests.recommender.serving.conftest import N_ITEMS, TRAINABLE, make_engine

HYBRID = HybridConfig(
    weights={
        V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 1.0, V.SIGNAL_ITEM_SIMILARITY: 1.0},
        V.SEGMENT_COLD: {V.SIGNAL_CF: 1.0, V.SIGNAL_CONTENT: 1.0, V.SIGNAL_POPULARITY: 0.5},
    },
    recency_decay=0.5,
)


def ids(result) -> list[str]:
    return [item["product_id"] for item in result.items]


def synthetic_set(engine, users: list[str], targets: list[int]) -> EvaluationSet:
    hist = engine.bundle.histories
    rows = [hist.index[u] for u in users]
    histories = [np.asarray(hist.liked(r), dtype=np.int64) for r in rows]
    return EvaluationSet(
        stage=V.STAGE_TEST,
        user_ids=users,
        targets=[np.array([t]) for t in targets],
        histories=histories,
        weights=[np.ones(len(h)) for h in histories],
        seen=histories,
        cf_rows=np.array([hist.cf_rows[r] for r in rows], dtype=np.int64),
        n_items=N_ITEMS,
        request_times=np.full(len(users), 1_700_000_000, dtype=np.int64),
        previous_gaps=np.full(len(users), 3600.0),
    )


def test_with_context_moves_or_appends_the_context_last():
    merged = with_context([np.array([3, 1, 2]), np.array([5])], [np.array([1]), np.array([9])])
    assert [m.tolist() for m in merged] == [[3, 2, 1], [5, 9]]


@pytest.mark.parametrize(
    "refold", [None, {"regularization": 0.3, "alpha": 4.0, "newest_boost": 2.0}]
)
def test_the_evaluated_context_ranking_is_the_engines(refold):
    """Also with an ALS model's refold (its user step): the evaluation scores what is served."""
    metadata = {"refold": refold}
    engine = make_engine(hybrid=HYBRID, metadata=metadata)
    model = engine.bundle.model
    assert (model.refold_model is model) is (refold is None)
    users = synthetic_set(engine, ["t5", "t1"], [20, 20])
    for cart, fold in ((20, True), (2, True), (20, False)):
        context = [np.array([cart])] * 2
        scores = served_with_context(model, HYBRID, users, users.histories, context, fold)
        served = make_engine(
            ServingSettings(events={"trainable_fold_in": fold}), hybrid=HYBRID, metadata=metadata
        )
        for position, user in enumerate(users.user_ids):
            got = served.recommend(user, topk=N_ITEMS - 6, rerank=False, context_items=[f"p{cart}"])
            excluded = {*TRAINABLE[user], cart}
            values = np.round(scores[position], 6)
            order = [i for i in np.lexsort((np.arange(N_ITEMS), -values)) if i not in excluded]
            assert ids(got) == [f"p{i}" for i in order[: N_ITEMS - 6]], (user, cart, fold)


def test_the_report_checks_both_protocols_and_prints_pass_or_miss():
    engine = make_engine(hybrid=HYBRID)
    users = synthetic_set(engine, ["t0", "t1", "t2", "t3", "t4", "t5"], [5, 9, 11, 4, 20, 7])
    assert [c.tolist() for c in previous_items(users)] == [[h[-1]] for h in TRAINABLE.values()]
    settings = EvaluationSettings(bootstrap_samples=50)
    report = evaluate_context(engine.bundle.model, HYBRID, users, settings, True)
    assert report["users"] == 6 and set(report["protocols"]) == {"realistic", "exact"}
    for out in report["protocols"].values():
        # the previous item is already the newest history item: the stored row stays, same answer
        assert out["known"][ROW_CONTEXT] == out["known"][ROW_FULL]
        assert out["checks"]["known"]["passed"] is True
        assert set(out["checks"]) == {"known", "known_new_item", "anonymous"}
        assert ROW_ANONYMOUS_CONTEXT in out["anonymous"]
        assert {ROW_CF_FULL, ROW_CF_REFOLD} <= set(out["known"])
        assert set(out["cf_refold_vs_stored_row"]) == {"mean", "low", "high"}
    text = format_context_report(report)
    assert text.count("PASS") + text.count("MISS") == 6
    assert "| realistic | known | hybrid (full history) |" in text
    assert text.count("CF only, refolded with the new item − stored row") == 2
