"""The demo generator: real shop shape, determinism, learnable structure, canonical round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.data import generate_demo, load_source
from recommender.data.sources import demo, taxonomy
from recommender.data.sources.demo_catalogue import BRANDS, CATEGORIES
from recommender.errors import InvalidDataError


@pytest.fixture(scope="module")
def shop() -> demo.SourceTables:
    """The default-size demo shop (50,000 users, 2,000 products), in memory."""
    return demo.generate()


def test_default_shop_matches_the_real_shop_shape(shop: demo.SourceTables) -> None:
    inter = shop.interactions
    per_user = inter.groupby(V.USER_ID).size()
    assert inter[V.USER_ID].nunique() == 50_000
    assert len(shop.products) == 2_000
    assert abs((per_user == 1).mean() - 0.91) < 0.01
    assert abs((inter[V.RATING] == 5).mean() - 0.95) < 0.015
    assert set(inter[V.RATING].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert not inter.duplicated([V.USER_ID, V.PRODUCT_ID]).any()
    span = inter[V.TIMESTAMP].max() - inter[V.TIMESTAMP].min()
    assert pd.Timedelta(days=700) < span <= pd.Timedelta(days=731)


def test_popularity_is_long_tailed(shop: demo.SourceTables) -> None:
    per_item = shop.interactions.groupby(V.PRODUCT_ID).size().sort_values(ascending=False)
    top_decile_share = per_item.head(200).sum() / per_item.sum()
    assert 0.4 < top_decile_share < 0.7
    assert per_item.iloc[0] > 20 * per_item.median()


def test_catalogue_is_a_vietnamese_cosmetics_catalogue(shop: demo.SourceTables) -> None:
    products = shop.products
    assert products[V.PRODUCT_ID].is_unique and products[V.NAME].is_unique
    assert set(products[V.CATEGORY]) == set(CATEGORIES)
    assert set(products[V.BRAND]) <= set(BRANDS)
    assert {"CeraVe", "La Roche-Posay", "Cocoon", "Anessa"} <= set(products[V.BRAND])
    assert products[V.PRICE].between(10_000, 5_000_000).all()
    assert products[V.AVG_RATING].between(3.5, 5.0).all()
    assert (products[V.NUM_SOLD] >= products[V.NUM_RATINGS]).all()
    known_skin = set(taxonomy.SKIN_TYPES)
    assert all(1 <= len(s) and set(s) <= known_skin for s in products[V.SKIN_TYPES])
    first = products.iloc[0]
    # the name parses back to its brand and category with the same vocabulary the real sources use
    assert taxonomy.parse_category(first[V.NAME]) == first[V.CATEGORY]
    assert taxonomy.parse_brand(first[V.NAME]) == first[V.BRAND]
    assert "thương hiệu" in first[V.DESCRIPTION] and "Cách dùng" in first[V.DESCRIPTION]


def test_generator_is_deterministic_for_a_seed() -> None:
    a, b, c = (
        demo.generate(2_000, 80, seed=3),
        demo.generate(2_000, 80, seed=3),
        demo.generate(2_000, 80, seed=4),
    )
    pd.testing.assert_frame_equal(a.products, b.products)
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    assert not a.interactions[V.PRODUCT_ID].equals(c.interactions[V.PRODUCT_ID])


def test_repeat_users_items_carry_content_and_collaborative_structure(
    shop: demo.SourceTables,
) -> None:
    inter = shop.interactions.sort_values([V.USER_ID, V.TIMESTAMP])
    brand = shop.products.set_index(V.PRODUCT_ID)[V.BRAND]
    inter = inter.assign(brand=brand.loc[inter[V.PRODUCT_ID]].to_numpy())
    repeat = inter[inter.groupby(V.USER_ID)[V.USER_ID].transform("size") >= 2]
    last = repeat.groupby(V.USER_ID).tail(1)
    earlier = repeat.drop(last.index)
    history = earlier.groupby(V.USER_ID)["brand"].agg(set)
    same_brand = np.mean(
        [b in history[u] for u, b in zip(last[V.USER_ID], last["brand"], strict=True)]
    )
    # baseline: a popularity-drawn product's brand in the same histories
    rng = np.random.default_rng(0)
    drawn = rng.choice(inter["brand"].to_numpy(), size=len(last))
    baseline = np.mean([b in history[u] for u, b in zip(last[V.USER_ID], drawn, strict=True)])
    assert same_brand > 1.4 * baseline
    # co-purchase: item pairs bought by the same users repeat far beyond chance
    pairs = earlier[[V.USER_ID, V.PRODUCT_ID]].merge(last[[V.USER_ID, V.PRODUCT_ID]], on=V.USER_ID)
    counts = pairs.groupby([f"{V.PRODUCT_ID}_x", f"{V.PRODUCT_ID}_y"]).size()
    assert counts.max() >= 5


def test_generate_demo_writes_canonical_files_that_load_back(tmp_path: Path) -> None:
    manifest = generate_demo(tmp_path / "raw", users=1_500, products=60, seed=11)
    files = sorted(p.name for p in (tmp_path / "raw").iterdir())
    assert files == [demo.MANIFEST_FILE, demo.INTERACTIONS_FILE, demo.PRODUCTS_FILE]
    assert [p.name for p in tmp_path.iterdir()] == ["raw"]  # no staging leftovers
    tables = load_source("demo", tmp_path / "raw")
    expected = demo.generate(1_500, 60, seed=11)
    assert manifest["interactions"] == len(expected.interactions)
    pd.testing.assert_frame_equal(tables.interactions.reset_index(drop=True), expected.interactions)
    assert tables.products[V.PRODUCT_ID].tolist() == expected.products[V.PRODUCT_ID].tolist()
    assert tables.products[V.SKIN_TYPES].tolist() == expected.products[V.SKIN_TYPES].tolist()
    assert tables.dropped == {}


def test_large_shop_is_vectorised(tmp_path: Path) -> None:
    tables = demo.generate(users=120_000, products=500, seed=1)
    assert tables.interactions[V.USER_ID].nunique() == 120_000


@pytest.mark.parametrize(("users", "products"), [(0, 10), (10, 0)])
def test_sizes_must_be_positive(users: int, products: int) -> None:
    with pytest.raises(InvalidDataError, match="must be positive"):
        demo.generate(users, products)


def test_missing_demo_files_say_how_to_create_them(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="demo-data --out"):
        load_source("demo", tmp_path)


@pytest.mark.parametrize(("users", "products", "seed"), [(50_000, 2_000, 42), (2_500, 80, 11)])
def test_reserved_example_ids_have_their_documented_histories(
    users: int, products: int, seed: int, shop: demo.SourceTables
) -> None:
    tables = shop if users == demo.DEFAULT_USERS else demo.generate(users, products, seed)
    inter = tables.interactions
    ratings = inter.groupby(V.USER_ID)[V.RATING].agg(["size", "min", "max"])
    assert inter[V.USER_ID].nunique() == users  # relabelled, none added or lost
    assert ratings.loc["1", "size"] >= 5 and ratings.loc["1", "min"] >= 4
    assert ratings.loc["2", "size"] >= 3 and ratings.loc["2", "min"] >= 4
    assert ratings.loc["3", "max"] <= 2  # every product rated below the positive threshold
    assert ratings.loc["999999"].tolist() == [1, 5.0, 5.0]  # one 5★ purchase: cold, no CF row
    assert demo.NEW_VISITOR not in ratings.index
    others = ratings.index.difference(list(demo.RESERVED_USERS))
    assert others.str.fullmatch(r"u\d{6}").all()


def test_the_manifest_documents_the_reserved_ids(tmp_path: Path) -> None:
    manifest = generate_demo(tmp_path / "raw", users=1_500, products=60, seed=11)
    assert list(manifest["reserved_user_ids"]) == ["1", "2", "3", "999999"]
    assert manifest["new_visitor_id"] == demo.NEW_VISITOR


def test_dense_profile_gives_every_active_user_at_least_20_products():
    from recommender.data.sources.demo import DENSE_MIN_PER_USER, generate

    tables = generate(users=3000, products=3000, seed=3, profile="dense")
    per_user = tables.interactions.groupby(V.USER_ID).size()
    active = per_user[per_user > 1]
    assert active.min() >= DENSE_MIN_PER_USER == 20
    assert 0.4 < len(active) / 3000 < 0.6  # half the users are active
    assert not tables.interactions.duplicated([V.USER_ID, V.PRODUCT_ID]).any()


def test_default_profile_is_unchanged_by_the_dense_option():
    from recommender.data.sources.demo import generate

    a = generate(users=500, products=60, seed=9)
    b = generate(users=500, products=60, seed=9, profile="default")
    pd.testing.assert_frame_equal(a.interactions, b.interactions)
    assert a.interactions[V.USER_ID].str.fullmatch(r"u\d{6}|1|2|3|999999").all()


def test_unknown_profile_is_refused():
    from recommender.data.sources.demo import generate
    from recommender.errors import InvalidDataError

    with pytest.raises(InvalidDataError, match="profile must be one of"):
        generate(users=10, products=10, profile="sparse")


def test_ratings_profile_gives_active_users_50_products_with_graded_ratings():
    from recommender.data.sources.demo import RATINGS_MIN_PER_USER, generate

    tables = generate(users=1500, products=2000, seed=3, profile="ratings")
    per_user = tables.interactions.groupby(V.USER_ID).size()
    active = per_user[per_user > 1]
    assert active.min() >= RATINGS_MIN_PER_USER == 50
    assert 0.3 < len(active) / 1500 < 0.6  # about half drawn active; repeats drop a few
    shares = tables.interactions[V.RATING].value_counts(normalize=True)
    assert set(shares.index) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 0.2 < shares[5.0] < 0.6 and shares[[1.0, 2.0, 3.0]].sum() > 0.2  # graded, not all 5s
