"""run_study: a seeded, budgeted, batched-parallel TPE search with median pruning; with_budget."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config import load_training_settings
from recommender.config.training import (
    ALSParams,
    BPRParams,
    ItemKNNParams,
    PopularityParams,
    SearchRange,
    TrainingSettings,
    TuningSettings,
)
from recommender.data import load_processed
from recommender.errors import InvalidRequestError
from recommender.registry import Registry
from recommender.training.als import fit_als
from recommender.training.bpr_uniform import fit_uniform
from recommender.training.pipeline import run_training
from recommender.training.publish import register_run
from recommender.training.search import (
    STATE_COMPLETE,
    STATE_FAILED,
    STATE_PRUNED,
    Report,
    StudyResult,
    _expressible,
    check_space,
    paired_z,
    run_study,
    with_budget,
)
from tests.fixtures.models import fast_settings

SPACE = {
    "factors": SearchRange(low=2, high=64, log=True),
    "regularization": SearchRange(low=0.01, high=100.0, log=True),
}


def _peak(params: ALSParams, report: Report) -> float:
    """A smooth objective peaking at factors 16, regularization 1, reported over 4 steps."""
    value = -((np.log2(params.factors) - 4) ** 2) - np.log10(params.regularization) ** 2
    for step in range(1, 4):
        report(step, float(value) - (4 - step))
    return float(value)


def _strip(trials: list[dict]) -> list[dict]:
    return [{k: v for k, v in t.items() if k != "seconds"} for t in trials]


def test_parallel_study_is_a_function_of_the_seed() -> None:
    tuning = TuningSettings(trials=12, n_jobs=2, startup_trials=4)
    base = ALSParams(factors=8, regularization=10.0)
    a = run_study("als", base, SPACE, _peak, tuning, seed=7, trials=12, prunable=True)
    b = run_study("als", base, SPACE, _peak, tuning, seed=7, trials=12, prunable=True)
    c = run_study("als", base, SPACE, _peak, tuning, seed=8, trials=12, prunable=True)
    assert _strip(a.trials) == _strip(b.trials)
    assert a.best == b.best and a.best_value == b.best_value
    assert _strip(a.trials) != _strip(c.trials)
    assert len(a.trials) == 12 and a.stopped_by == "trials"
    # the configured point is trial 0, so the study never ends below it
    assert a.trials[0]["params"] == {"factors": 8, "regularization": 10.0}
    assert a.best_value >= a.trials[0]["value"]
    assert a.best_value == max(t["value"] for t in a.trials if t["state"] == STATE_COMPLETE)


def test_hopeless_trials_are_pruned_on_intermediate_values() -> None:
    tuning = TuningSettings(trials=20, n_jobs=2, startup_trials=3)
    study = run_study(
        "als", ALSParams(factors=16, regularization=1.0), SPACE, _peak, tuning, 1, 20, True
    )
    pruned = [t for t in study.trials if t["state"] == STATE_PRUNED]
    assert pruned, study.trials
    # a pruned trial stopped at a report after the first (warm-up: step 1 is never pruned)
    assert all(len(t["intermediate"]) in (2, 3) and t["value"] is None for t in pruned)
    summary = study.summary()
    assert summary["pruned"] == len(pruned)
    assert summary["complete"] + summary["pruned"] + summary["failed"] == 20
    unpruned = run_study(
        "als",
        ALSParams(factors=16, regularization=1.0),
        SPACE,
        _peak,
        tuning.model_copy(update={"pruning": False}),
        1,
        20,
        True,
    )
    assert unpruned.summary()["pruned"] == 0


def test_time_budget_stops_between_batches() -> None:
    def slow(params: ALSParams, report: Report) -> float:
        time.sleep(0.2)
        return float(params.factors)

    tuning = TuningSettings(trials=50, n_jobs=2, timeout_seconds=0.1)
    study = run_study("als", ALSParams(factors=8), SPACE, slow, tuning, 0, 50)
    assert study.stopped_by == "timeout" and len(study.trials) == 2


def test_a_default_outside_the_space_is_scored_beside_the_study() -> None:
    """A null half-life cannot be sampled from a log range: it is trial ``default``."""
    space = {"half_life_days": SearchRange(low=1.0, high=100.0, log=True)}

    def score(params: PopularityParams, report: Report) -> float:
        return 1.0 if params.half_life_days is None else 0.5

    study = run_study("popularity", PopularityParams(), space, score, TuningSettings(), 0, 4)
    assert [t["number"] for t in study.trials] == ["default", 0, 1, 2]
    assert study.best == PopularityParams() and study.best_value == 1.0
    assert _expressible(PopularityParams(half_life_days=7.0), space) == {"half_life_days": 7.0}


def test_int_ranges_sample_ints_with_their_step_and_lists_are_categories() -> None:
    space = {
        "iterations": SearchRange(low=50, high=400, step=50),
        "negative_sampling": ["uniform", "popularity"],
    }
    seen: list[BPRParams] = []

    def record(params: BPRParams, report: Report) -> float:
        seen.append(params)
        return 0.0

    run_study("bpr", BPRParams(iterations=100), space, record, TuningSettings(n_jobs=1), 0, 10)
    assert all(p.iterations % 50 == 0 and 50 <= p.iterations <= 400 for p in seen)
    assert {p.negative_sampling for p in seen} == {"uniform", "popularity"}


def test_unknown_search_keys_and_bad_ranges_are_config_errors() -> None:
    with pytest.raises(ValueError, match=r"keys \['neighbors'\] are not ItemKNNParams fields"):
        check_space({"neighbors": [10]}, ItemKNNParams, "item_knn search")
    with pytest.raises(ValueError, match="need low <= high and low > 0 when log is true"):
        SearchRange(low=0.0, high=1.0, log=True)


def test_budget_flag_and_demo_budget() -> None:
    settings = TrainingSettings(tuning=TuningSettings(trials=40, side_trials=20, demo_trials=8))
    assert with_budget(settings, None, demo=False) == settings
    demo = with_budget(settings, None, demo=True).tuning
    assert (demo.trials, demo.side_trials) == (8, 8)
    assert with_budget(settings, "full", demo=True) == settings
    three = with_budget(settings, "3", demo=True).tuning
    assert (three.trials, three.side_trials) == (3, 3)
    with pytest.raises(InvalidRequestError, match="--trials 'many'"):
        with_budget(settings, "many", demo=False)


def test_shipped_search_spaces_name_real_fields_and_contain_the_defaults() -> None:
    settings = load_training_settings(None)
    assert settings.tuning.method == "optuna"
    for space, params in (
        (settings.als.search, settings.als.params),
        (settings.bpr.search, settings.bpr.params),
        (settings.ease.search, settings.ease.params),
        (settings.item_knn_search, settings.item_knn),
    ):
        check_space(space, type(params), "training.yaml")
        assert _expressible(params, space) is not None, params
    assert settings.als.search["factors"] == SearchRange(low=8, high=256, log=True)


def _blocks() -> sp.csr_matrix:
    rng = np.random.default_rng(0)
    return sp.csr_matrix((rng.random((60, 30)) < 0.2).astype(np.float32))


def test_chunked_fits_report_and_equal_one_fit() -> None:
    """Pruning checks must not change the factors: chunked BPR epochs continue one random
    stream, and ALS's callback only reads the factors."""
    steps: list[int] = []
    whole = fit_uniform(_blocks(), 4, 0.05, 0.01, 7, 3)
    chunked = fit_uniform(_blocks(), 4, 0.05, 0.01, 7, 3, lambda d, u, v: steps.append(d), 3)
    assert steps == [3, 6]
    np.testing.assert_array_equal(whole[0], chunked[0])
    np.testing.assert_array_equal(whole[1], chunked[1])
    als_steps: list[int] = []
    params = ALSParams(factors=4, iterations=15, random_state=1)
    plain = fit_als(_blocks(), params, num_threads=1)
    watched = fit_als(_blocks(), params, 1, lambda d, u, v: als_steps.append(d), 5)
    assert als_steps == [5, 10]
    np.testing.assert_array_equal(plain.user_factors, watched.user_factors)


def test_optuna_build_saves_the_study_beside_the_model(embedded_dir: Path, tmp_path: Path) -> None:
    settings = fast_settings()
    settings = settings.model_copy(
        update={
            "tuning": TuningSettings(method="optuna", trials=3, side_trials=2, startup_trials=1),
            "als": settings.als.model_copy(
                update={"search": {"regularization": SearchRange(low=1.0, high=100.0, log=True)}}
            ),
            "item_knn_search": {"shrinkage": SearchRange(low=10.0, high=1000.0, log=True)},
        }
    )
    lines: list[str] = []
    run = run_training(load_processed(embedded_dir), settings, (V.MODEL_ALS,), lines.append)
    als = run.models[V.MODEL_ALS]
    assert als.study is not None and len(als.study.trials) == 3
    assert als.factors.params == als.study.best
    assert als.validation["study"]["trials"] == 3
    assert any(line.startswith("  als search: 3 trials") for line in lines)
    assert any(line.startswith("  item_knn search: 2 trials") for line in lines)
    assert run.item_knn == run.side_studies["item_knn"].best
    record = register_run(Registry(tmp_path / "cf"), run, settings)[V.MODEL_ALS]
    directory = tmp_path / "cf" / record.model_id
    study = json.loads((directory / V.STUDY_FILE).read_text())
    assert set(study) == {"als", "item_knn"}
    assert [t["params"]["regularization"] for t in study["als"]["trials"]][0] == 10.0
    assert all(t["state"] == STATE_COMPLETE and t["value"] >= 0 for t in study["als"]["trials"])
    metadata = json.loads((directory / "metadata.json").read_text())
    assert metadata["studies"]["als"]["best_params"] == als.study.best.model_dump()


def test_start_points_follow_the_configured_one() -> None:
    starts = [{"factors": 32, "regularization": 0.1}, {"factors": 4}]
    study = run_study(
        "als",
        ALSParams(factors=8, regularization=10.0),
        SPACE,
        _peak,
        TuningSettings(),
        0,
        4,
        starts=starts,
    )
    assert [t["params"] for t in study.trials[:2]] == [
        {"factors": 8, "regularization": 10.0},
        {"factors": 32, "regularization": 0.1},
    ]
    assert study.trials[2]["params"]["factors"] == 4


def test_a_diverging_bpr_point_fails_its_trial_and_the_study_goes_on() -> None:
    """A learning rate at the top of a wide range can make BPR diverge: the fit says so clearly
    (numba's fastmath division had raised a bare ZeroDivisionError that ended the whole build),
    and the search records that trial as failed and keeps the others."""
    matrix = sp.random(300, 60, density=0.1, format="csr", dtype=np.float32, random_state=0)
    matrix.data[:] = 1
    with pytest.raises(FloatingPointError, match=r"BPR diverged .*learning_rate=50.0.*lower"):
        fit_uniform(matrix, 16, 50.0, 0.0, 50, 42)

    def objective(params: BPRParams, report: Report) -> float:
        factors = fit_uniform(matrix, 8, params.learning_rate, 0.0, 20, 42)
        return float(np.abs(factors[1]).mean())

    space = {"learning_rate": SearchRange(low=0.01, high=100.0, log=True)}
    tuning = TuningSettings(trials=8, n_jobs=2, startup_trials=8)
    study = run_study("bpr", BPRParams(learning_rate=0.05), space, objective, tuning, 3, 8)
    states = [t["state"] for t in study.trials]
    assert STATE_FAILED in states and STATE_COMPLETE in states and len(states) == 8
    assert study.best.learning_rate < 5.0


def _noisy_gain(amplitude: float) -> Callable[[ALSParams, Report], np.ndarray]:
    """Per-user values: 0.5 plus a smooth gain peaking away from the anchor (factors 8, reg 10),
    plus ``amplitude`` × a ±1 pattern for every other point (noise that a mean hides)."""
    pattern = np.where(np.arange(200) % 2 == 0, 1.0, -1.0)

    def objective(params: ALSParams, report: Report) -> np.ndarray:
        gain = 0.01 * np.exp(-((np.log2(params.factors) - 5) ** 2))
        anchor = params.factors == 8 and params.regularization == 10.0
        return 0.5 + gain + (0.0 if anchor else amplitude) * pattern

    return objective


def _anchor_study(amplitude: float, min_z: float) -> tuple[ALSParams, StudyResult]:
    tuning = TuningSettings(trials=12, n_jobs=2, startup_trials=4, min_z=min_z)
    base = ALSParams(factors=8, regularization=10.0)
    study = run_study("als", base, SPACE, _noisy_gain(amplitude), tuning, 0, 12)
    return base, study


def test_a_searched_point_within_validation_noise_keeps_the_start_point() -> None:
    """The top of many noisy validation values is partly luck: a searched point must beat the best
    anchor (params, starts) by min_z paired standard errors to replace it."""
    base, study = _anchor_study(amplitude=0.2, min_z=2.0)
    top = max(t["value"] for t in study.trials if t["state"] == STATE_COMPLETE)
    assert study.best == base and study.chosen_by == "anchor"
    assert study.best_value == study.trials[0]["value"] < top
    summary = study.summary()
    assert summary["chosen_by"] == "anchor" and summary["top_searched"]["value"] == top
    assert 0 < summary["top_searched"]["z"] < 2.0
    # the same gain without the noise is significant: the searched point wins
    _, clean = _anchor_study(amplitude=0.0, min_z=2.0)
    assert clean.chosen_by == "validation" and clean.best.factors != 8
    assert clean.best_value == max(t["value"] for t in clean.trials)
    assert clean.summary()["top_searched"]["z"] is None  # infinite: JSON has no infinity
    # min_z 0: the top validation value wins, as before
    _, plain = _anchor_study(amplitude=0.2, min_z=0.0)
    assert plain.chosen_by == "validation" and plain.best_value == top
    assert plain.summary()["top_searched"] is None


def test_paired_z_is_the_mean_gain_over_its_standard_error() -> None:
    gain = np.array([1.0, 2.0, 3.0, 4.0])
    assert paired_z(gain, np.zeros(4)) == pytest.approx(2.5 / (np.std(gain, ddof=1) / 2))
    assert paired_z(np.ones(3), np.zeros(3)) == math.inf
    assert paired_z(np.zeros(3), np.zeros(3)) == 0.0


def test_shipped_ease_starts_hold_the_old_grid_winners_of_demo_and_hasaki() -> None:
    settings = load_training_settings(None)
    assert settings.tuning.min_z == 0.0  # opt-in (README: measured both ways)
    assert settings.ease.starts == [{"regularization": 300.0}, {"regularization": 10.0}]
