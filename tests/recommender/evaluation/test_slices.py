"""Same-session / later slices, the realistic (daily-rebuild) protocol and the hybrid's paired
difference with its best single signal, on a hand-made shop whose values are worked out here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.config.training import EvaluationSettings, ItemKNNParams
from recommender.data.processed import ProcessedData
from recommender.evaluation import metrics as M
from recommender.evaluation.evaluator import (
    RankingResult,
    evaluate_protocols,
    evaluate_rankers,
    paired_difference,
    vs_best_single,
)
from recommender.evaluation.protocol import (
    SLICE_LATER,
    SLICE_SAME_SESSION,
    EvaluationSet,
    as_of_rebuild,
    as_served,
    build_evaluation_set,
    realistic_view,
    rebuild_start,
)
from recommender.evaluation.rankers import best_single_candidates, signal_ranker
from recommender.evaluation.report import build_report, format_table, metrics_summary
from recommender.evaluation.side_signals import scoring_model, stage_signals

DAY = 86400
T0 = int(pd.Timestamp("2024-03-10 10:00", tz="UTC").timestamp())  # a Sunday, 10:00 UTC


def _shop() -> ProcessedData:
    """Four users, four products. Histories (train) then one test positive each:

    - a: p0 at T0, test p1 at T0 + 24 h exactly     -> gap 86400 s (same session: <= 24 h)
    - b: p0 at T0, test p2 at T0 + 24 h + 1 s       -> gap 86401 s (later)
    - c: p1 at T0 + 23 h, test p2 at T0 + 24 h      -> gap 3600 s (same session)
    - d: p0 rated 2 (not a positive) at T0, test p3 at T0 + 1 h -> no previous positive
    """
    rows = [
        ("a", "p0", 5, T0, V.SPLIT_TRAIN),
        ("a", "p1", 5, T0 + DAY, V.SPLIT_TEST),
        ("b", "p0", 5, T0, V.SPLIT_TRAIN),
        ("b", "p2", 5, T0 + DAY + 1, V.SPLIT_TEST),
        ("c", "p1", 5, T0 + 23 * 3600, V.SPLIT_TRAIN),
        ("c", "p2", 5, T0 + DAY, V.SPLIT_TEST),
        ("d", "p0", 2, T0, V.SPLIT_TRAIN),
        ("d", "p3", 5, T0 + 3600, V.SPLIT_TEST),
    ]
    frame = pd.DataFrame(rows, columns=[V.USER_ID, V.PRODUCT_ID, V.RATING, "t", V.SPLIT])
    frame[V.TIMESTAMP] = pd.to_datetime(frame.pop("t"), unit="s", utc=True)
    frame[V.WEIGHT] = 1.0
    frame[V.SOURCE] = "hand"
    frame[V.IS_POSITIVE] = frame[V.RATING] >= 4
    items = ["p0", "p1", "p2", "p3"]
    products = pd.DataFrame(
        {
            V.PRODUCT_ID: items,
            V.NAME: items,
            V.AVG_RATING: [4.0] * 4,
            V.NUM_RATINGS: [1] * 4,
        }
    )
    return ProcessedData(
        directory=Path("/nonexistent/hand"),
        data_version="hand-v1",
        products=products,
        interactions=frame,
        item_ids=items,
        user_ids=["a", "b", "c", "d"],
        trainable_user_ids=["a", "b", "c"],
        popular=[],
        stats={},
    )


@pytest.fixture(scope="module")
def test_set() -> EvaluationSet:
    return build_evaluation_set(_shop(), V.STAGE_TEST)


def test_previous_gap_is_the_time_since_the_newest_prior_positive(test_set) -> None:
    assert test_set.user_ids == ["a", "b", "c", "d"]
    assert test_set.previous_gaps is not None
    assert test_set.previous_gaps.tolist() == [86400.0, 86401.0, 3600.0, np.inf]


def test_slice_membership_at_the_24_hour_boundary(test_set) -> None:
    assert test_set.slice_indices(SLICE_SAME_SESSION, 24).tolist() == [0, 2]  # a (= 24 h), c
    assert test_set.slice_indices(SLICE_LATER, 24).tolist() == [1]  # b (24 h + 1 s)
    # d has no previous positive: in neither slice; the hours are a setting
    assert test_set.slice_indices(SLICE_SAME_SESSION, 1).tolist() == [2]
    assert test_set.slice_indices(SLICE_LATER, 1).tolist() == [0, 1]
    assert test_set.subset(np.array([3, 1])).slice_indices(SLICE_LATER, 24).tolist() == [1]
    with pytest.raises(ValueError, match="unknown slice"):
        test_set.slice_indices("tomorrow", 24)


def test_rebuild_start_floors_to_the_period_boundary() -> None:
    midnight = T0 - 10 * 3600
    times = np.array([midnight, midnight + 1, T0, midnight + DAY - 1, midnight + DAY])
    assert rebuild_start(times, 1).tolist() == [midnight] * 4 + [midnight + DAY]
    assert rebuild_start(np.array([T0]), 0.25).tolist() == [midnight + 6 * 3600]
    with pytest.raises(ValueError, match="rebuild period"):
        rebuild_start(times, 0)


def test_realistic_popularity_is_as_of_the_start_of_the_rebuild_day(test_set) -> None:
    """User c's test request is at T0 + 24 h (Monday 10:00). Exact: the positives before it are
    p0 twice (Sunday 10:00), p1 once (Sunday 09:00 + 24 h = Monday 09:00) and user d's held-out
    p3 (Sunday 11:00; a's held-out p1 is at the request itself, not before it). Popularity frozen
    at the rebuild: as of Monday 00:00, p0 twice and p3. As served with live events: Monday's p1
    counts the live weight (2) on top of the build's counts."""
    data = _shop()
    side = stage_signals(data, V.STAGE_TEST, ItemKNNParams(), None)
    rank = signal_ranker(scoring_model(None, side), V.SIGNAL_POPULARITY)
    c = test_set.subset(np.array([2]))
    exact = rank(c, V.SEGMENT_UNKNOWN)
    frozen = rank(as_of_rebuild(c, 1), V.SEGMENT_UNKNOWN)
    served = rank(as_served(c, 1, 2.0), V.SEGMENT_UNKNOWN)
    assert exact is not None and frozen is not None and served is not None
    third = np.log1p(1) / np.log1p(2)
    np.testing.assert_allclose(exact[0], [1.0, third, 0, third], rtol=1e-6)
    np.testing.assert_allclose(frozen[0], [1.0, 0, 0, third], rtol=1e-6)
    np.testing.assert_allclose(served[0], [1.0, 1.0, 0, third], rtol=1e-6)
    assert realistic_view(c, 1, True, 2.0).live_period_days == 1
    assert realistic_view(c, 1, False, 2.0).request_times.tolist() == [T0 + 14 * 3600]
    moved = as_of_rebuild(test_set, 1)
    assert moved.request_times.tolist() == [T0 + 14 * 3600] * 3 + [T0 - 10 * 3600]
    assert moved.previous_gaps is not None and test_set.previous_gaps is not None
    assert moved.previous_gaps.tolist() == test_set.previous_gaps.tolist()  # slices unchanged


def _result(ndcg: list[float]) -> RankingResult:
    return RankingResult(
        per_user={"ndcg@10": np.array(ndcg)}, top_k=np.zeros((len(ndcg), 10), dtype=np.int64)
    )


def test_paired_difference_with_the_best_single_signal() -> None:
    hybrid = _result([1.0, 0.5, 0.0, 1.0])
    singles = {"popularity": _result([0.0, 0.5, 0.0, 0.0]), "als": _result([1.0, 0.0, 0.0, 0.5])}
    out = vs_best_single(hybrid, singles, bootstrap_samples=0, seed=1)
    assert out == {
        "ndcg@10": {"row": "als", "difference": {"mean": 0.25, "low": 0.25, "high": 0.25}}
    }
    with_ci = paired_difference(np.array([1.0, 0.5, 0.0, 1.0]), np.array([1.0, 0, 0, 0.5]), 500, 7)
    low, high = M.bootstrap_interval(np.array([0.0, 0.5, 0.0, 0.5]), 500, 7)
    assert with_ci == {"mean": 0.25, "low": low, "high": high}
    assert 0.0 <= low < 0.25 < high <= 0.5
    # equal means: the first candidate in order wins; no candidates or no users: nothing
    level = {"popularity": _result([0.5]), "als": _result([0.5])}
    tie = vs_best_single(_result([1.0]), level, 0, 1)
    assert tie["ndcg@10"]["row"] == "popularity"
    assert vs_best_single(hybrid, {}, 0, 1) == {}
    assert vs_best_single(_result([]), singles, 0, 1) == {}


def test_best_single_candidates_are_the_hybrids_own_signals() -> None:
    rows = ["random", "popularity", "item_knn", "content", "als", "bpr", "hybrid:als", "hybrid:bpr"]
    assert best_single_candidates(rows) == {
        "hybrid:als": ["popularity", "item_knn", "content", "als"],
        "hybrid:bpr": ["popularity", "item_knn", "content", "bpr"],
    }
    assert best_single_candidates(["random", "popularity", "ease", "hybrid"]) == {
        "hybrid": ["popularity", "ease"]
    }


def _oracle(batch: EvaluationSet, segment: str) -> np.ndarray:
    """Ranks each user's target first."""
    scores = np.zeros((len(batch), batch.n_items), dtype=np.float32)
    for row, target in enumerate(batch.targets):
        scores[row, target] = 1.0
    return scores


def _constant(order: list[float]):
    def rank(batch: EvaluationSet, segment: str) -> np.ndarray:
        return np.tile(np.array(order, dtype=np.float32), (len(batch), 1))

    return rank


def test_every_row_reports_its_slices_and_the_hybrid_its_paired_difference(test_set) -> None:
    """Unknown segment (nothing excluded). The constant ranking p2 > p1 > p3 > p0 puts b's and
    c's target (p2) first, a's (p1) second and d's (p3) third; the oracle hybrid ranks all first."""
    rankers = {"popularity": _constant([0.0, 0.8, 1.0, 0.5]), "hybrid": _oracle}
    table = evaluate_rankers(
        rankers,
        test_set,
        [V.SEGMENT_UNKNOWN],
        [10],
        None,
        0,
        3,
        same_session_hours=24,
        best_single_of={"hybrid": ["popularity"]},
    )
    rows = table[V.SEGMENT_UNKNOWN]
    second, third = 1 / np.log2(3), 1 / np.log2(4)
    pop = rows["popularity"]
    assert pop["users"] == 4
    assert pop["metrics"]["ndcg@10"]["mean"] == pytest.approx((2 + second + third) / 4)
    assert pop["slices"][SLICE_SAME_SESSION]["users"] == 2  # a, c
    assert pop["slices"][SLICE_SAME_SESSION]["metrics"]["ndcg@10"]["mean"] == pytest.approx(
        (second + 1) / 2
    )
    assert pop["slices"][SLICE_LATER]["users"] == 1  # b
    assert pop["slices"][SLICE_LATER]["metrics"]["ndcg@10"]["mean"] == pytest.approx(1.0)
    assert "vs_best_single" not in pop
    hybrid = rows["hybrid"]
    gain = hybrid["vs_best_single"]["ndcg@10"]
    assert gain["row"] == "popularity"
    assert gain["difference"]["mean"] == pytest.approx(((1 - second) + (1 - third)) / 4)
    same = hybrid["slices"][SLICE_SAME_SESSION]["vs_best_single"]["ndcg@10"]["difference"]
    assert same["mean"] == pytest.approx((1 - second) / 2)
    later = hybrid["slices"][SLICE_LATER]["vs_best_single"]["ndcg@10"]["difference"]
    assert later["mean"] == pytest.approx(0.0)


def test_report_headline_is_realistic_and_keeps_the_exact_table(test_set) -> None:
    """Both protocols in one report: the headline (and the registry's gate) is the realistic one,
    the exact-time table is kept beside it, and the text shows both with slices and gains."""
    data = _shop()
    side = stage_signals(data, V.STAGE_TEST, ItemKNNParams(), None)
    base = scoring_model(None, side)
    rankers = {
        "popularity": signal_ranker(base, V.SIGNAL_POPULARITY),
        "hybrid": _oracle,
    }
    settings = EvaluationSettings(ks=[10], bootstrap_samples=0, rebuild_period_days=1)
    tables = evaluate_protocols(
        rankers, test_set, V.SEGMENTS, settings, None, best_single_candidates(list(rankers))
    )
    report = build_report(
        tables["realistic"],
        stage=V.STAGE_TEST,
        data_version="hand-v1",
        embedding_version=None,
        ks=[10],
        bootstrap_samples=0,
        exact_table=tables["exact"],
        rebuild_period_days=1,
        same_session_hours=24,
    )
    assert report["headline_protocol"] == "realistic"
    assert set(report["exact_segments"]) == set(V.SEGMENTS)
    summary = metrics_summary(report)
    assert summary["protocol"] == "realistic" and summary["rebuild_period_days"] == 1
    assert summary[V.GATE_METRIC] == 1.0  # the oracle hybrid on trainable users
    assert summary["exact"][V.GATE_METRIC] == 1.0
    assert summary["slices"][V.SEGMENT_UNKNOWN]["popularity"][SLICE_LATER]["users"] == 1
    assert summary["exact"][V.SEGMENT_UNKNOWN]["popularity"]["ndcg@10"] == pytest.approx(
        report["exact_segments"][V.SEGMENT_UNKNOWN]["rows"]["popularity"]["metrics"]["ndcg@10"][
            "mean"
        ]
    )
    gain = summary["vs_best_single"][V.SEGMENT_UNKNOWN]["hybrid"]["ndcg@10"]
    assert gain["row"] == "popularity" and gain["mean"] > 0
    text = format_table(report)
    assert "realistic protocol (headline): popularity as of the rebuild every 1 day(s)" in text
    assert "exact-time protocol" in text
    assert "hybrid - its best single signal, ndcg@10" in text
    assert "n=2" in text  # the same-session slice of the unknown segment
