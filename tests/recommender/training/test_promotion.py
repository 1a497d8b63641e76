"""Promotion keeps the configured default unless another model's paired validation gain is
significant (training/promotion.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.config.training import PromotionSettings, TrainingSettings
from recommender.data.processed import ProcessedData
from recommender.evaluation.protocol import build_evaluation_set
from recommender.training.pipeline import run_training, tuning_protocol_view
from recommender.training.promotion import choose_promoted
from tests.fixtures.models import fast_settings
from tests.recommender.training.synthetic import synthetic_data

ORDER = ["als", "ease", "bpr"]


def _noise(users: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(users)


def test_an_insignificant_gain_does_not_replace_the_default() -> None:
    base = _noise(500, 0)
    # BPR is better on average (+0.006, as on Hasaki) but the per-user differences are noise
    noise = np.random.default_rng(1).normal(0.0, 0.3, 500)
    bpr = base + 0.006 + noise - noise.mean()
    chosen, report = choose_promoted({"als": base, "bpr": bpr}, ORDER, 2.0)
    assert chosen == "als"
    assert report["default"] == "als" and report["chosen"] == "als"
    assert report["candidates"]["bpr"]["significant"] is False
    assert 0 < report["candidates"]["bpr"]["z"] < 2.0
    # the old rule (any positive gain) would have taken it
    assert choose_promoted({"als": base, "bpr": bpr}, ORDER, 0.0)[0] == "bpr"


def test_a_significant_gain_replaces_the_default() -> None:
    base = _noise(500, 0)
    noise = np.random.default_rng(2).normal(0.0, 0.05, 500)
    ease = base + 0.02 + noise - noise.mean()
    chosen, report = choose_promoted({"als": base, "ease": ease}, ORDER, 2.0)
    assert chosen == "ease"
    assert report["candidates"]["ease"]["significant"] is True
    assert report["candidates"]["ease"]["z"] > 2.0
    assert report["candidates"]["als"] == {
        "ndcg@10": round(float(base.mean()), 6),
        "gain": 0.0,
        "z": None,
        "significant": False,
    }


def test_among_significant_candidates_the_largest_gain_wins() -> None:
    base = _noise(400, 0)
    small = base + 0.01
    large = base + 0.03
    assert choose_promoted({"als": base, "ease": small, "bpr": large}, ORDER, 2.0)[0] == "bpr"


def test_a_worse_candidate_never_replaces_the_default() -> None:
    base = _noise(400, 0)
    chosen, _ = choose_promoted({"als": base, "ease": base - 0.05}, ORDER, 0.0)
    assert chosen == "als"


def test_the_default_is_the_first_trained_model_of_the_order() -> None:
    values = {"bpr": np.full(10, 0.2), "ease": np.full(10, 0.2)}
    assert choose_promoted(values, ORDER, 2.0)[0] == "ease"
    assert choose_promoted(values, ["bpr", "ease"], 2.0)[0] == "bpr"
    assert choose_promoted(values, ["als"], 2.0)[0] == "bpr"  # none listed: the first trained


def test_unpaired_or_missing_values_are_an_error() -> None:
    with pytest.raises(ValueError, match="not paired"):
        choose_promoted({"als": np.zeros(3), "bpr": np.zeros(4)}, ORDER, 2.0)
    with pytest.raises(ValueError, match="no trained model"):
        choose_promoted({}, ORDER, 2.0)


def test_the_order_may_not_list_a_model_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        PromotionSettings(order=["als", "als"])


@pytest.fixture(scope="module")
def data() -> ProcessedData:
    return synthetic_data(seed=0)


def _with_promotion(order: list[str], min_z: float) -> TrainingSettings:
    settings = fast_settings()
    promotion = PromotionSettings.model_validate({"order": order, "min_z": min_z})
    return settings.model_copy(update={"promotion": promotion})


def test_the_build_promotes_by_the_rule_and_reports_it(data: ProcessedData) -> None:
    types = (V.MODEL_ALS, V.MODEL_EASE)
    strict = run_training(data, _with_promotion(["als", "ease"], 1e6), types, embeddings=False)
    values = {m: t.promotion_values for m, t in strict.models.items()}
    assert values["als"] is not None and values["ease"] is not None
    assert values["als"].shape == values["ease"].shape and values["als"].size > 0  # paired
    gain = float((values["ease"] - values["als"]).mean())
    assert gain > 0  # on this data EASE's hybrid is (insignificantly) better on validation...
    assert strict.best == "als"  # ...but no gain is 1e6 standard errors: the default stays
    report = strict.report["promotion"]
    assert report["default"] == "als" and report["chosen"] == "als"
    assert report["users"] == values["als"].size
    assert report["candidates"]["ease"]["gain"] == round(gain, 6)
    assert report["candidates"]["ease"]["significant"] is False
    # min_z 0 is the old rule (any positive mean gain wins): EASE
    loose = run_training(data, _with_promotion(["als", "ease"], 0.0), types, embeddings=False)
    assert loose.best == "ease" and loose.report["promotion"]["chosen"] == "ease"


def test_tuning_protocol_realistic_moves_validation_requests_to_the_rebuild_start(
    data: ProcessedData,
) -> None:
    users = build_evaluation_set(data, V.STAGE_VALIDATION)
    # the synthetic interactions fall on midnights: move the requests into the day
    users = dataclasses.replace(users, request_times=users.request_times + 5 * 3600)
    exact = fast_settings()
    frozen = exact.model_copy(
        update={"tuning": exact.tuning.model_copy(update={"protocol": "realistic"})}
    )
    assert tuning_protocol_view(users, exact) is users
    live = frozen.model_copy(
        update={"evaluation": frozen.evaluation.model_copy(update={"live_popularity": True})}
    )
    served = tuning_protocol_view(users, live)  # live popularity: as served with events
    assert (served.live_period_days, served.live_weight) == (1.0, 2.0)
    np.testing.assert_array_equal(served.request_times, users.request_times)
    moved = tuning_protocol_view(users, frozen)  # popularity frozen at the rebuild (the default)
    assert moved.live_period_days is None
    day = 86_400
    np.testing.assert_array_equal(moved.request_times, users.request_times // day * day)
    assert (moved.request_times < users.request_times).all()
    assert moved.targets is users.targets and moved.histories is users.histories
