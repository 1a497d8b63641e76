"""Variant models: bound to the default's live state, bounded, failures kept, memory counted."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from recommender.config.serving import ServingSettings
from recommender.serving import ServingCaches, ServingState
from recommender.serving.engine import Engine
from recommender.serving.live_state import LiveState
from recommender.serving.variant_models import VariantModels, bundle_memory
from tests.recommender.serving.conftest import make_bundle


def _default(settings: ServingSettings, model_id: str = "m1") -> ServingState:
    bundle = make_bundle(model_id=model_id)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    engine.live = LiveState(bundle, settings.events)
    return ServingState(bundle, engine, engine.caches, 0.0)


def _loader(calls: list[str]) -> Any:
    def load(settings: ServingSettings, model_id: str) -> Any:
        calls.append(model_id)
        if model_id == "other-data":
            bundle = make_bundle(model_id=model_id)
            return replace(bundle, info={**bundle.info, "data_version": "dv2"})
        return make_bundle(model_id=model_id, seed=3)

    return load


def test_variant_models_share_the_default_live_state_and_follow_it() -> None:
    settings = ServingSettings.model_validate({"experiments": {"max_loaded_models": 2}})
    calls: list[str] = []
    models = VariantModels(settings, _loader(calls))
    default = _default(settings)
    models.sync(default, ["m2", "m1", "m3", "m4"])
    assert [m["model_id"] for m in models.stats()["loaded"]] == ["m2", "m3"]
    assert models.failures == {"m4": "experiments.max_loaded_models (2) variant models are loaded"}
    assert models.state_for("m1", default) is default  # the default is never loaded twice
    m2 = models.state_for("m2", default)
    assert m2 is not None and m2.bundle.model_id == "m2"
    assert m2.engine.live is default.engine.live  # one live state for every model
    # a new default (same data): the bundle is reused, rebound to the new live state
    new_default = _default(settings, "m9")
    models.sync(new_default, ["m2"])
    rebound = models.state_for("m2", new_default)
    assert rebound is not None and rebound.bundle is m2.bundle
    assert rebound.engine.live is new_default.engine.live
    assert calls == ["m2", "m3"]  # m4 never loaded (limit), m2 not reloaded
    assert models.state_for("m3", new_default) is None  # no longer wanted: unloaded


def test_a_model_on_other_data_is_refused_with_the_reason() -> None:
    settings = ServingSettings()
    models = VariantModels(settings, _loader([]))
    default = _default(settings)
    models.sync(default, ["other-data"])
    assert models.state_for("other-data", default) is None
    assert "trained on data dv2" in models.failures["other-data"]
    assert models.load_failures == 1


def test_bundle_memory_counts_each_array_once() -> None:
    bundle = make_bundle()
    memory = bundle_memory(bundle)
    factors = bundle.model.item_factors.nbytes + bundle.model.user_factors.nbytes
    assert memory["heap_bytes"] >= factors
    assert memory["mapped_bytes"] == 0  # built in memory, nothing memory-mapped
    assert (
        memory["heap_bytes"]
        < 10 * sum(a.nbytes for a in vars(bundle.model).values() if isinstance(a, np.ndarray))
        + 10**6
    )
