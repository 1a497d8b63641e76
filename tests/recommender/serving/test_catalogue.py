"""Catalogue records/masks and user histories built from processed tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.errors import ModelLoadError
from recommender.serving import Catalogue, Filters, UserHistories, eligibility_mask
from recommender.serving.filters import first_allowed
from tests.recommender.serving.conftest import interactions, products


def test_catalogue_records_and_masks():
    df = products()
    df.loc[0, V.PRICE] = np.nan
    df.loc[1, V.BRAND] = None
    cat = Catalogue.from_products(df)
    assert cat.size == 24 and cat.index["p5"] == 5
    assert cat.records[0][V.PRICE] is None and cat.records[1][V.BRAND] is None
    assert cat.records[2] == {
        V.PRODUCT_ID: "p2",
        V.NAME: "Sản phẩm 2",
        V.BRAND: "C",
        V.CATEGORY: "serum",
        V.PRICE: 120000.0,
        V.AVG_RATING: 4.4,
        V.NUM_RATINGS: 30,
        V.NUM_SOLD: 102,
        V.SKIN_TYPES: ["oily"],
    }
    assert np.flatnonzero(cat.brand_masks["b"]).tolist() == [4, 7, 10, 13, 16, 19, 22]
    assert np.flatnonzero(cat.skin_type_masks["combination"]).tolist() == list(range(12, 24))
    assert not cat.brand_masks["a"].flags.writeable
    # unknown price never passes a price filter
    mask = eligibility_mask(cat, Filters(price_max=1e9))
    assert not mask[0] and mask[1:].all()
    assert eligibility_mask(cat, Filters()) is None


def test_ratings_are_read_from_the_records_once_as_arrays():
    df = products()
    df.loc[3, [V.AVG_RATING, V.NUM_RATINGS]] = [np.nan, np.nan]
    cat = Catalogue.from_products(df)
    ratings, counts = cat.ratings
    assert cat.ratings is cat.ratings  # computed once (by the master, before a fork)
    assert np.isnan(ratings[3]) and counts[3] == 0.0
    expected = [r[V.AVG_RATING] for i, r in enumerate(cat.records) if i != 3]
    assert np.delete(ratings, 3).tolist() == expected and ratings.dtype == np.float64
    assert counts.tolist() == [float(r[V.NUM_RATINGS] or 0) for r in cat.records]
    assert not ratings.flags.writeable and not counts.flags.writeable


def test_histories_full_history_in_time_order():
    df = interactions()
    extra = pd.DataFrame(
        [
            {
                V.USER_ID: "t0",
                V.PRODUCT_ID: "p9",
                V.RATING: 3,
                V.TIMESTAMP: pd.Timestamp("2023-01-01"),
            },
            {
                V.USER_ID: "t0",
                V.PRODUCT_ID: "p1",
                V.RATING: 3,
                V.TIMESTAMP: pd.Timestamp("2025-01-01"),
            },
        ]
    )
    cat = Catalogue.from_products(products())
    hist = UserHistories.from_interactions(
        pd.concat([df, extra]),
        ["t0", "t1", "c0", "c1", "c2", "c3", "t2", "t3", "t4", "t5"],
        cat.index,
        ["t1", "t0"],
    )
    row = hist.index["t0"]
    assert hist.items(row).tolist() == [9, 0, 1, 2]  # p9 first (oldest), p1 once
    assert hist.cf_rows[hist.index["t0"]] == 1 and hist.cf_rows[hist.index["c0"]] == -1
    assert hist.n_trainable == 2
    positions, items = hist.seen_coordinates([-1, hist.index["c1"]])
    assert positions.tolist() == [1] and items.tolist() == [5]
    assert hist.user_items(24).shape == (10, 24)


def test_histories_reject_unknown_users_and_products():
    cat = Catalogue.from_products(products())
    with pytest.raises(ModelLoadError, match="missing from the processed mappings"):
        UserHistories.from_interactions(interactions(), ["t0"], cat.index, [])


@pytest.mark.parametrize("share", [0.0, 0.0001, 0.003, 0.05, 0.5, 1.0])
@pytest.mark.parametrize("width", [1, 10, 300, 5000])
def test_first_allowed_is_the_full_gather_cut_to_width(share, width):
    rng = np.random.default_rng(int(share * 10_000) + width)
    order = rng.permutation(20_000).astype(np.int64)
    mask = rng.random(20_000) < share
    mask[order[-1]] = share > 0  # an allowed item at the very end of the order
    expected = order[mask[order]][:width]
    got = first_allowed(order, mask, width)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)
    empty = np.zeros(0, dtype=np.int64)
    assert first_allowed(empty, np.zeros(0, dtype=bool), width).size == 0
