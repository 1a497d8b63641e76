"""The serving bundle fits its signals with the model's parameters: item-kNN (sessions included)
and popularity (half-life)."""

from __future__ import annotations

import numpy as np

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams
from recommender.scoring import PopularityHistory
from recommender.serving.bundle import ModelBundle

from .conftest import N_ITEMS, interactions, make_bundle

KNN = {"neighbours": 10, "shrinkage": 0.0}


def bundle_with(item_knn: dict[str, float], **metadata: object) -> ModelBundle:
    return make_bundle(metadata={"item_knn": item_knn, **metadata})


def test_histories_keep_seconds_in_time_order():
    bundle = bundle_with(KNN)
    seconds = bundle.histories.seconds
    assert seconds is not None and seconds.shape == bundle.histories.indices.shape
    row = bundle.histories.index["t1"]
    start = bundle.histories.indptr[row]
    day0 = int(np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64))
    # t1's four items were taken on consecutive days (conftest)
    np.testing.assert_array_equal(seconds[start : start + 4], day0 + 86400 * np.arange(4))


def test_bundle_uses_session_parameters_of_the_model():
    plain = bundle_with(KNN).model.item_similarity.toarray()
    # items of a user are one day apart: a 48 h gap puts each user's items in one session, so with
    # shrinkage 0 every co-occurring pair counts 1 + 2 = 3 times: exactly 3 x the plain cosine
    weighted = bundle_with(
        {"neighbours": 10, "shrinkage": 0.0, "session_weight": 2.0, "session_gap_hours": 48.0}
    )
    assert weighted.info["item_knn"]["session_weight"] == 2.0
    np.testing.assert_allclose(weighted.model.item_similarity.toarray(), 3 * plain, rtol=1e-6)
    assert plain.max() > 0
    # a 12 h gap makes every interaction its own session: no same-session pairs, plain cosine
    split = bundle_with(
        {"neighbours": 10, "shrinkage": 0.0, "session_weight": 2.0, "session_gap_hours": 12.0}
    )
    np.testing.assert_allclose(split.model.item_similarity.toarray(), plain, rtol=1e-6)


def test_bundle_popularity_uses_the_models_half_life_as_of_the_newest_interaction():
    frame = interactions()
    items = frame[V.PRODUCT_ID].str[1:].astype(int).to_numpy()
    seconds = frame[V.TIMESTAMP].to_numpy().astype("datetime64[s]").astype(np.int64)
    all_time = bundle_with(KNN).model.popularity  # models without the key: all-time counts
    counts = np.log1p(np.bincount(items, minlength=N_ITEMS))
    np.testing.assert_allclose(all_time, counts / counts.max(), rtol=1e-6)
    decayed = bundle_with(KNN, popularity={"half_life_days": 0.5})
    expected = PopularityHistory.from_events(items, seconds, N_ITEMS, 0.5).latest()
    np.testing.assert_allclose(decayed.model.popularity, expected, rtol=1e-6)
    # item 6 (day 3, once) outranks item 1 (days 0-1, three times) only with the short half-life
    assert decayed.model.popularity[6] > decayed.model.popularity[1]
    assert all_time[6] < all_time[1]
    assert decayed.popular_order[0] == int(np.argmax(expected))


def test_missing_item_knn_keys_fall_back_to_trainings_defaults():
    bundle = bundle_with({"neighbours": 10})
    assert bundle.info["item_knn"] == {
        "neighbours": 10,
        "shrinkage": 10.0,
        "session_weight": 0.0,
        "session_gap_hours": 168.0,
    }
    assert bundle.info["item_knn"] == ItemKNNParams(neighbours=10).model_dump()


def test_unknown_user_scores_are_rounded_to_the_served_precision():
    scores = make_bundle().unknown_scores.astype(np.float64)
    np.testing.assert_allclose(scores, np.round(scores, V.SCORE_DECIMALS), rtol=0, atol=1e-7)
    assert V.SCORE_DECIMALS == 6
