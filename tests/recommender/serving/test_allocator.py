"""The batch path's heap retention (``batch.retain_heap_mb``, glibc's mallopt)."""

from __future__ import annotations

import platform
import sys

import pytest

from recommender.config.serving import ServingSettings
from recommender.serving import allocator
from tests.recommender.serving.conftest import make_engine

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def test_zero_leaves_malloc_alone(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    assert allocator.retain_heap(0) is False
    assert allocator._applied is None


@pytest.mark.skipif(not GLIBC, reason="mallopt thresholds are glibc's")
def test_glibc_takes_the_thresholds_and_an_engine_sets_them(monkeypatch):
    monkeypatch.setattr(allocator, "_applied", None)
    assert allocator.retain_heap(48) is True
    assert allocator._applied == 48
    monkeypatch.setattr(allocator, "_applied", None)
    make_engine(ServingSettings(batch={"retain_heap_mb": 40}))
    assert allocator._applied == 40
    assert ServingSettings().batch.retain_heap_mb == 32


@pytest.mark.skipif(not GLIBC, reason="malloc_trim is glibc's")
def test_freed_heap_is_handed_back_after_a_warm_up(monkeypatch):
    """The holder trims the heap once its cache warm-up is done (the chunks' freed arrays)."""
    from recommender.serving import holder as holder_module
    from tests.recommender.serving.test_holder import FakeRegistry, holder_for

    assert allocator.release_free_heap() in (True, False)  # glibc answers; nothing raised
    calls: list[bool] = []
    monkeypatch.setattr(holder_module, "release_free_heap", lambda: calls.append(True) or True)
    holder = holder_for(FakeRegistry("m1"))
    assert holder.reload(warm=True, background_warmup=False).ok
    assert calls == [True]
