"""ModelHolder: swap, failure keeps serving, polling, startup without a model."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time

import pytest

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.errors import ModelLoadError, NotReadyError
from recommender.serving import ModelHolder
from tests.recommender.serving.conftest import make_bundle


class FakeRegistry:
    """A current model id the loader builds, and a marker the poller reads."""

    def __init__(self, model_id: str | None = "m1") -> None:
        self.model_id = model_id
        self.broken = False
        self.loads = 0
        self.writes = 0  # registry writes that do not change the current model
        self.unreadable = False  # registry.json is corrupt: current_id() and load() fail

    def marker(self, _settings) -> str | None:
        return None if self.model_id is None else f"{self.model_id}:{self.writes}"

    def current_id(self, _settings) -> str | None:
        if self.unreadable:
            raise ModelLoadError("registry.json is not valid JSON")
        return self.model_id

    def load(self, _settings):
        self.loads += 1
        if self.model_id is None:
            raise ModelLoadError("no current model in the registry")
        if self.broken or self.unreadable:
            raise ModelLoadError(f"checksum mismatch for {self.model_id}")
        return make_bundle(model_id=self.model_id)


def holder_for(registry: FakeRegistry, **settings) -> ModelHolder:
    return ModelHolder(
        ServingSettings(**settings),
        loader=registry.load,
        marker=registry.marker,
        current_id=registry.current_id,
    )


def test_startup_without_model_then_recover():
    registry = FakeRegistry(None)
    holder = holder_for(registry)
    result = holder.reload()
    assert not result.ok and holder.state is None
    with pytest.raises(NotReadyError, match="no current model"):
        holder.require()
    assert holder.poll_once() is False  # nothing in the registry yet
    registry.model_id = "m1"
    assert holder.poll_once() is True
    assert holder.require().bundle.model_id == "m1" and holder.last_error is None


def test_failed_reload_keeps_the_old_model_serving():
    registry = FakeRegistry("m1")
    holder = holder_for(registry)
    assert holder.reload(warm=False).ok
    old = holder.state
    registry.model_id, registry.broken = "m2", True
    result = holder.reload(warm=False)
    assert (result.ok, result.previous_model_id, result.model_id) == (False, "m1", "m1")
    assert "checksum mismatch" in result.error
    assert holder.state is old
    assert holder.last_error["still_serving"] == "m1"
    assert old.engine.recommend("t0", topk=3).items  # still answers


def test_swap_is_atomic_and_caches_are_fresh():
    registry = FakeRegistry("m1")
    holder = holder_for(registry)
    holder.reload(warm=False)
    old = holder.state
    old.engine.recommend("t0")
    registry.model_id = "m2"
    assert holder.reload(warm=False).ok
    new = holder.state
    assert new.bundle.model_id == "m2" and old.bundle.model_id == "m1"
    assert len(new.caches.user_profiles) == 0 and len(old.caches.user_profiles) == 1
    assert old.engine.recommend("t0", topk=2).items  # an in-flight request finishes on the old one


def test_poll_reloads_only_on_a_new_marker_and_backs_off_after_failure():
    registry = FakeRegistry("m1")
    holder = holder_for(registry)
    holder.reload(warm=False)
    assert holder.poll_once() is False and registry.loads == 1
    registry.model_id, registry.broken = "m2", True
    assert holder.poll_once() is False and registry.loads == 2
    assert holder.poll_once() is False and registry.loads == 2  # not hammered
    assert holder.state.bundle.model_id == "m1"
    registry.model_id, registry.broken = "m3", False
    assert holder.poll_once() is True and holder.state.bundle.model_id == "m3"


def test_background_poller_picks_up_a_new_model():
    registry = FakeRegistry("m1")
    holder = holder_for(registry, reload={"poll_interval_seconds": 0.05})
    holder.reload(warm=False)
    holder.start_polling()
    try:
        registry.model_id = "m2"
        deadline = time.monotonic() + 5
        while holder.state.bundle.model_id != "m2" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert holder.state.bundle.model_id == "m2"
    finally:
        holder.stop()


def test_registry_write_without_new_current_model_does_not_reload():
    registry = FakeRegistry("m1")
    holder = holder_for(registry)
    holder.reload(warm=False)
    state = holder.state
    registry.writes += 1  # e.g. a candidate was registered
    assert holder.poll_once() is False
    assert holder.state is state and registry.loads == 1
    registry.model_id = "m2"
    assert holder.poll_once() is True and registry.loads == 2


def test_a_fixed_registry_naming_the_serving_model_clears_the_reload_error():
    """The registry breaks (poll -> failed reload), then is repaired and names the model that
    still serves: the error must clear, or /health keeps reporting it and the alert keeps firing."""
    registry = FakeRegistry("m1")
    holder = holder_for(registry)
    holder.reload(warm=False)
    state = holder.state
    registry.unreadable, registry.writes = True, 1
    assert holder.poll_once() is False
    assert holder.last_error is not None and holder.last_error["still_serving"] == "m1"
    registry.unreadable, registry.writes = False, 2  # repaired: rewritten, current is still m1
    assert holder.poll_once() is False
    assert holder.last_error is None
    assert holder.state is state and registry.loads == 2  # nothing reloaded: m1 was serving


def test_polling_disabled_by_zero_interval():
    holder = holder_for(FakeRegistry("m1"), reload={"poll_interval_seconds": 0})
    holder.start_polling()
    assert holder._poller is None


def test_background_warm_up_after_reload():
    holder = holder_for(FakeRegistry("m1"))
    holder.reload()
    holder.wait_for_warmup(5)
    assert holder.state.caches.warmup.state == "done"
    assert len(holder.state.caches.user_profiles) == 10


def test_reload_outcomes_are_counted_and_reported_to_the_hook():
    registry = FakeRegistry("m1")
    seen = []
    holder = ModelHolder(
        ServingSettings(),
        loader=registry.load,
        marker=registry.marker,
        current_id=registry.current_id,
        on_reload=seen.append,
    )
    before = time.time()
    assert holder.reload(warm=False).ok
    registry.broken = True
    assert not holder.reload(warm=False).ok
    assert not holder.reload(warm=False).ok
    assert (holder.reloads, holder.reload_failures) == (1, 2)
    assert [r.ok for r in seen] == [True, False, False]
    assert holder.last_success is seen[0] and holder.last_failure is seen[2]
    assert before <= seen[0].finished_at <= seen[1].finished_at <= seen[2].finished_at
    assert seen[2].as_dict()["finished_at"] == seen[2].finished_at


def test_a_failing_hook_never_undoes_a_reload():
    registry = FakeRegistry("m1")

    def broken_hook(_result):
        raise RuntimeError("metrics backend down")

    holder = ModelHolder(
        ServingSettings(),
        loader=registry.load,
        marker=registry.marker,
        current_id=registry.current_id,
        on_reload=broken_hook,
    )
    assert holder.reload(warm=False).ok
    assert holder.require().bundle.model_id == "m1" and holder.reloads == 1


def test_entry_path_leaving_the_registry_is_refused_and_the_old_model_keeps_serving(
    embedded_dir, registry_dir, tmp_path
):
    """Real registry + load_bundle: a tampered entry path ("../../etc") is a ModelLoadError
    naming the entry, and the model loaded before it keeps serving."""
    registry = tmp_path / "cf"
    shutil.copytree(registry_dir, registry)
    settings = ServingSettings.model_validate(
        {"paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry)}}
    )
    holder = ModelHolder(settings)
    assert holder.reload(warm=False).ok
    serving = holder.require().bundle.model_id
    state = json.loads((registry / V.REGISTRY_FILE).read_text())
    state["models"][state["current"]]["path"] = "../../etc"
    (registry / V.REGISTRY_FILE).write_text(json.dumps(state))
    result = holder.reload(warm=False)
    assert not result.ok
    assert f"entry '{serving}' has path '../../etc', which leaves the registry" in result.error
    assert holder.last_error["type"] == "ModelLoadError"
    assert holder.require().bundle.model_id == serving


def test_a_preloaded_bundle_is_served_only_while_the_registry_names_it():
    """gunicorn's master loads before forking (service/preload.py): a worker serves that bundle
    while it is current, and loads the current one itself when a promotion came in between."""
    registry = FakeRegistry("m1")
    preloaded = dataclasses.replace(make_bundle(model_id="m1"), marker=registry.marker(None))
    holder = holder_for(registry)
    assert holder.reload(warm=False, preloaded=preloaded).ok and registry.loads == 0
    state = holder.require()
    assert state.bundle is preloaded and state.engine.bundle is preloaded
    assert state.engine.recommend("t0", topk=3).items
    registry.model_id = "m2"  # a later promotion: the poller loads as before
    assert holder.poll_once() is True and registry.loads == 1
    assert holder.require().bundle.model_id == "m2"
    late = holder_for(registry)  # a worker forked after the promotion, from the same master
    assert late.reload(warm=False, preloaded=preloaded).ok and registry.loads == 2
    assert late.require().bundle.model_id == "m2"
