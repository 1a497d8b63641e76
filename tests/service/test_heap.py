"""After a model loads, its objects leave the collector's generations (service.heap)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recommender.serving import ReloadResult
from service.heap import freeze_after_load
from tests.service.conftest import make_client


@pytest.fixture(autouse=True)
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the suite collects as usual


def in_collector(obj: object) -> bool:
    """Whether a collection pass walks ``obj`` (frozen objects are in no generation)."""
    return any(other is obj for other in gc.get_objects())


def test_the_loaded_model_is_frozen_out_of_full_collections():
    with make_client(reload={"freeze_gc": True}) as client:
        bundle = client.app.state.holder.require().bundle
        record = bundle.catalogue.records[0]
        assert gc.is_tracked(record) and not in_collector(record)
        assert gc.get_freeze_count() > 0
        # what requests allocate afterwards is collected as before
        response = client.post("/recommend", json={"user_id": "t0", "topk": 3})
        assert response.status_code == 200


def test_nothing_is_frozen_when_switched_off_or_when_a_load_failed():
    with make_client(reload={"freeze_gc": False}) as client:
        record = client.app.state.holder.require().bundle.catalogue.records[0]
        assert in_collector(record) and gc.get_freeze_count() == 0
        freeze_after_load(ReloadResult(False, "m1", None, 0.1, error="broken"))
        assert in_collector(record) and gc.get_freeze_count() == 0
