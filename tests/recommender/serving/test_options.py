"""RecommendOptions: one frozen, validated value; a fixed-size digest for the results cache."""

from __future__ import annotations

import dataclasses

import pytest

from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError
from recommender.serving import Filters, RecommendOptions
from recommender.serving.options import DIGEST_BYTES
from tests.recommender.serving.conftest import make_engine

SETTINGS = ServingSettings()


def test_parse_applies_defaults_and_is_frozen():
    options = RecommendOptions.parse(SETTINGS)
    assert options == RecommendOptions(
        topk=10, exclude_seen=True, filters=Filters(), rerank=True, weights=None, explain=False
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.topk = 5  # type: ignore[misc]


def test_parse_normalises_filters_and_weights():
    options = RecommendOptions.parse(
        SETTINGS, topk=3, filters={"brand": "A"}, rerank=False, weights={"quality": 1, "cf": 2}
    )
    assert options.filters == Filters(brand=("A",))
    assert options.weights == (("cf", 2.0), ("quality", 1.0))
    assert options.weight_map == {"cf": 2.0, "quality": 1.0}
    assert options.rerank is False


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"topk": 0}, "topk=0: must be between 1 and 100"),
        ({"topk": 101}, "topk=101: must be between 1 and 100"),
        ({"weights": {"nope": 1}}, "unknown signal 'nope'"),
        ({"filters": {"price_min": 5, "price_max": 1}}, "greater than price_max"),
    ],
)
def test_parse_rejects_with_the_fix(args, fragment):
    with pytest.raises(InvalidRequestError, match=fragment):
        RecommendOptions.parse(SETTINGS, **args)


def test_digest_is_fixed_size_and_decides_only_the_ranking():
    small = RecommendOptions.parse(SETTINGS)
    huge = RecommendOptions.parse(
        SETTINGS,
        filters={
            "exclude_product_ids": ["x" * 128 + str(i) for i in range(1000)],
            "brand": [f"brand-{i}" for i in range(200)],
        },
    )
    assert len(small.digest) == len(huge.digest) == DIGEST_BYTES
    assert small.digest != huge.digest
    assert small.digest == RecommendOptions.parse(SETTINGS, topk=10, rerank=True).digest
    assert small.digest == RecommendOptions.parse(SETTINGS, explain=True).digest
    for other in ({"topk": 9}, {"rerank": False}, {"exclude_seen": False}, {"weights": {"cf": 1}}):
        assert RecommendOptions.parse(SETTINGS, **other).digest != small.digest


def test_engine_takes_options_or_keywords_not_both():
    engine = make_engine()
    options = engine.options(topk=4, rerank=False)
    assert (
        engine.recommend("t0", options).items == engine.recommend("t0", topk=4, rerank=False).items
    )
    assert engine.recommend_batch(["t0"], options)[0].items == engine.recommend("t0", options).items
    with pytest.raises(TypeError, match="either options or keyword options"):
        engine.recommend("t0", options, topk=4)
