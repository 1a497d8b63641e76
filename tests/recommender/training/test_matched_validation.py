"""Validation users resampled to the test population's strata (tuning.validation_population)."""

from __future__ import annotations

import numpy as np

from recommender.config.training import TrainingSettings, TuningSettings
from recommender.evaluation.protocol import EvaluationSet
from recommender.training.matched_validation import matched_users, strata, stratum_shares
from recommender.training.pipeline import validation_population

DAY = 86400.0


def _users(lengths: list[int], gap_days: list[float]) -> EvaluationSet:
    """One user per entry: ``lengths[i]`` prior positives, the newest ``gap_days[i]`` before."""
    n = len(lengths)
    histories = [np.arange(k, dtype=np.int64) for k in lengths]
    gaps = np.array([g * DAY if k else np.inf for k, g in zip(lengths, gap_days, strict=True)])
    return EvaluationSet(
        stage="validation",
        user_ids=[f"u{i}" for i in range(n)],
        targets=[np.array([9], dtype=np.int64)] * n,
        histories=histories,
        weights=[np.ones(k) for k in lengths],
        seen=histories,
        cf_rows=np.arange(n, dtype=np.int64),
        n_items=10,
        request_times=np.full(n, 1_700_000_000, dtype=np.int64),
        previous_gaps=gaps,
    )


def test_strata_split_by_prior_positives_and_time_since_the_newest() -> None:
    users = _users([0, 1, 1, 1, 1, 2, 5], [0, 0.5, 2, 100, 400, 0.5, 400])
    # no history: 0; else 1 + (min(k, 3) - 1) * 4 + gap bin (<= 1 d, 30 d, 180 d, more)
    assert strata(users).tolist() == [0, 1, 2, 3, 4, 5, 12]


def test_matched_users_take_the_reference_shares_and_keep_the_size() -> None:
    # 6 same-day one-item users, 2 stale ones, 2 without history; reference: half stale
    users = _users([1] * 8 + [0, 0], [0.5] * 6 + [400, 400] + [0, 0])
    reference = stratum_shares(_users([1, 1, 0], [0.5, 400, 0]))
    matched = matched_users(users, reference, seed=3)
    codes = strata(matched)
    assert len(matched) == len(users)
    assert np.count_nonzero(codes == 0) == 2  # users without history kept as they are
    assert np.count_nonzero(codes == 1) == 4 and np.count_nonzero(codes == 4) == 4
    stale = [u for u, c in zip(matched.user_ids, codes, strict=True) if c == 4]
    assert sorted(stale) == ["u6", "u6", "u7", "u7"]  # each once before any twice
    assert matched.user_ids == matched_users(users, reference, seed=3).user_ids


def test_matched_users_leave_out_strata_the_validation_users_lack() -> None:
    users = _users([1, 1, 2], [0.5, 0.5, 0.5])
    reference = stratum_shares(_users([1, 1, 3], [0.5, 400, 0.5]))  # no stale validation user
    codes = strata(matched_users(users, reference, seed=0))
    assert sorted(codes.tolist()) == [1, 1, 1]  # 2-item users are not in the reference either


def test_validation_population_all_is_the_identity() -> None:
    users = _users([1, 1, 2], [0.5, 400, 0.5])
    test = _users([1, 1], [400, 400])
    assert validation_population(test, TrainingSettings())(users, 0) is users
    matched = TrainingSettings(tuning=TuningSettings(validation_population="matched"))
    assert strata(validation_population(test, matched)(users, 0)).tolist() == [4, 4, 4]
