"""Registered models served beside the default one, for A/B variants that name a ``model_id``.

Each variant model is an immutable :class:`ModelBundle` with its own engine and caches, bound to
the *default* model's live state (events, carts, purchases, new products, live prices): every
model was trained on the processed data the default serves (``load_bundle`` refuses another
data version), so item indices and the catalogue are the same, and one event stream feeds all
of them. At most ``experiments.max_loaded_models`` are held; a model the default already is
costs nothing. A model that cannot be loaded never takes serving down: :meth:`state_for` answers
``None`` with the reason in :attr:`VariantModels.failures` and the caller falls back to control.

When the default changes (reload, promote, rollback), :meth:`sync` rebinds every held bundle to
the new default's live state (same data version: the bundle is reused; a new data version: it is
loaded again, and a model trained on the old data then fails with that reason).
"""

from __future__ import annotations

import logging
import mmap
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import fields, is_dataclass
from typing import Any

import numpy as np

from recommender.config.serving import ServingSettings
from recommender.serving.bundle import ModelBundle, load_bundle
from recommender.serving.caches import ServingCaches
from recommender.serving.engine import Engine
from recommender.serving.holder import ServingState
from recommender.serving.redaction import public_message, serving_roots

log = logging.getLogger(__name__)
Loader = Callable[[ServingSettings, str], ModelBundle]
_MAX_DICT = 64  # dicts walked for arrays (info, precomputed sets); larger ones are lookups


def _arrays(value: Any, depth: int = 0) -> Iterator[np.ndarray]:
    """Every numpy array reachable from ``value`` through dataclasses, dicts, lists, tuples."""
    if isinstance(value, np.ndarray):
        yield value
    elif depth > 4 or isinstance(value, str | bytes | int | float) or value is None:
        return
    elif is_dataclass(value) and not isinstance(value, type):
        for f in fields(value):
            yield from _arrays(getattr(value, f.name, None), depth + 1)
    elif isinstance(value, dict) and len(value) <= _MAX_DICT:  # not an id -> index map
        for item in value.values():
            yield from _arrays(item, depth + 1)
    elif isinstance(value, list | tuple) and value and isinstance(value[0], np.ndarray):
        for item in value:
            yield from _arrays(item, depth + 1)
    elif hasattr(value, "__dict__") and not callable(value):
        for item in vars(value).values():
            yield from _arrays(item, depth + 1)


def bundle_memory(bundle: ModelBundle) -> dict[str, int]:
    """Bytes of the bundle's arrays: ``heap_bytes`` in this process, ``mapped_bytes`` memory-
    mapped from the serving-array files (shared by every worker through the page cache)."""
    heap = mapped = 0
    seen: set[int] = set()
    for array in _arrays(bundle):
        base = array
        while isinstance(base.base, np.ndarray):
            base = base.base
        if id(base) in seen:
            continue
        seen.add(id(base))
        if isinstance(base, np.memmap) or isinstance(base.base, mmap.mmap):
            mapped += base.nbytes
        else:
            heap += base.nbytes
    return {"heap_bytes": int(heap), "mapped_bytes": int(mapped)}


class VariantModels:
    """The variant models of this process (thread-safe; :meth:`sync` swaps the table whole)."""

    def __init__(self, settings: ServingSettings, loader: Loader | None = None) -> None:
        self.settings = settings
        self.limit = settings.experiments.max_loaded_models
        self._loader: Loader = loader or load_bundle
        self._lock = threading.Lock()
        self._states: dict[str, ServingState] = {}
        self._memory: dict[str, dict[str, int]] = {}
        self.failures: dict[str, str] = {}  # model id -> why it is not served (public text)
        self.load_failures = 0
        self._bound_to: ServingState | None = None

    def state_for(self, model_id: str, default: ServingState) -> ServingState | None:
        """The state answering ``model_id``: the default when it is that model, a loaded
        variant model, or ``None`` (not loaded: see :attr:`failures`)."""
        if default.bundle.model_id == model_id:
            return default
        return self._states.get(model_id)

    def sync(self, default: ServingState | None, wanted: Iterable[str]) -> None:
        """Hold exactly the ``wanted`` models that are not the default, bound to ``default``'s
        live state; load what is missing (failures recorded, never raised)."""
        with self._lock:
            wanted_ids = [m for m in dict.fromkeys(wanted)]
            states: dict[str, ServingState] = {}
            failures: dict[str, str] = {}
            memory: dict[str, dict[str, int]] = {}
            if default is None:
                failures = {m: "no default model loaded" for m in wanted_ids}
            for model_id in wanted_ids if default is not None else []:
                assert default is not None
                if model_id == default.bundle.model_id:
                    continue
                if len(states) >= self.limit:
                    failures[model_id] = (
                        f"experiments.max_loaded_models ({self.limit}) variant models are loaded"
                    )
                    continue
                try:
                    state = self._bind(model_id, default)
                except Exception as exc:  # noqa: BLE001 - a variant must never stop serving
                    text = public_message(str(exc), serving_roots(self.settings))
                    failures[model_id] = text
                    self.load_failures += 1
                    log.error(
                        "variant model %s not loaded (its variant falls back to control): %s",
                        model_id,
                        text,
                    )
                    continue
                states[model_id] = state
                memory[model_id] = bundle_memory(state.bundle)
            for dropped in set(self._states) - set(states):
                log.info("variant model %s unloaded", dropped)
            self._states, self.failures, self._memory = states, failures, memory
            self._bound_to = default

    def _bind(self, model_id: str, default: ServingState) -> ServingState:
        held = self._states.get(model_id)
        data_version = default.bundle.info.get("data_version")
        if held is not None and held.bundle.info.get("data_version") == data_version:
            bundle = held.bundle
            if held.engine.live is default.engine.live:
                return held
        else:
            started = time.perf_counter()
            bundle = self._loader(self.settings, model_id)
            log.info("variant model %s loaded in %.2fs", model_id, time.perf_counter() - started)
        if bundle.info.get("data_version") != data_version or bundle.n_items != (
            default.bundle.n_items
        ):
            raise ValueError(
                f"model {model_id} was trained on data {bundle.info.get('data_version')} "
                f"({bundle.n_items} products) but the default model {default.bundle.model_id} "
                f"serves {data_version} ({default.bundle.n_items} products); train it on the "
                "current data"
            )
        caches = ServingCaches.from_settings(self.settings.cache)
        engine = Engine(bundle, caches, self.settings)
        engine.live, engine.feed = default.engine.live, default.engine.feed  # shared live state
        return ServingState(bundle, engine, caches, time.time())

    def stats(self, default: ServingState | None = None) -> dict[str, Any]:
        """What /stats, /metrics and /experiments report: the loaded models and their memory
        (the default model's too, for comparison)."""
        states, memory = self._states, self._memory
        return {
            "max_loaded_models": self.limit,
            "default": None
            if default is None
            else {"model_id": default.bundle.model_id, **bundle_memory(default.bundle)},
            "loaded": [
                {
                    "model_id": model_id,
                    "model_type": state.bundle.info.get("model_type"),
                    "loaded_at": state.loaded_at,
                    **memory.get(model_id, {"heap_bytes": 0, "mapped_bytes": 0}),
                }
                for model_id, state in states.items()
            ],
            "failures": dict(self.failures),
            "load_failures": self.load_failures,
        }
