"""EASE's CF signal over a catalogue that grew after the build (live new products)."""

from __future__ import annotations

import numpy as np

from recommender.scoring.ease import ease_scores


def _item_item(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    b = rng.normal(size=(n, n)).astype(np.float32)
    np.fill_diagonal(b, 0.0)
    return b


def test_new_products_score_zero_and_add_nothing_to_a_history() -> None:
    b = _item_item(6)
    histories = [np.array([0, 2]), np.array([1, 6, 7]), np.array([], dtype=np.int64)]
    weights = [np.array([1.0, 0.5]), np.array([1.0, 0.25, 0.5]), np.array([])]
    scores = ease_scores(histories, b, weights, n_items=8)
    assert scores.shape == (3, 8) and scores.dtype == np.float32
    np.testing.assert_allclose(scores[0, :6], b[0] + 0.5 * b[2], rtol=1e-6)
    np.testing.assert_allclose(scores[1, :6], b[1], rtol=1e-6)  # items 6 and 7 have no B rows
    assert not scores[:, 6:].any() and not scores[2].any()


def test_the_base_catalogue_is_unchanged() -> None:
    b = _item_item(5)
    histories = [np.array([4, 1])]
    np.testing.assert_array_equal(ease_scores(histories, b, n_items=5), ease_scores(histories, b))
    np.testing.assert_allclose(ease_scores(histories, b)[0], b[4] + b[1], rtol=1e-6)
