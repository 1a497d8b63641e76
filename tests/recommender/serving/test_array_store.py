"""The bundle's large arrays are memory-mapped from files written once, and a damaged or stale set
never keeps a model from loading: it is recomputed (and the answers never change)."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.data import load_processed
from recommender.registry import Registry
from recommender.serving import Engine, ServingCaches, UserHistories, array_store, load_bundle
from recommender.serving import bundle as bundle_module
from recommender.serving.bundle import HISTORY_ARRAYS, build_bundle, hybrid_config
from recommender.storage import ArtifactWriteError
from tests.recommender.serving.conftest import arrays_dir_of


def settings_for(processed: Path, registry: Path) -> ServingSettings:
    return ServingSettings.model_validate(
        {"paths": {"processed_dir": str(processed), "registry_dir": str(registry)}}
    )


def mapped(array: np.ndarray | None) -> bool:
    """Whether ``array`` is (a view of) a memory map."""
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


def _large_arrays(bundle) -> dict[str, np.ndarray | None]:
    sim = bundle.model.item_similarity
    return {
        "user_factors": bundle.model.user_factors,
        "item_factors": bundle.model.item_factors,
        "embeddings": bundle.model.embeddings,
        "knn_data": sim.data,
        "knn_indices": sim.indices,
        "item_unit_factors": bundle.item_unit_factors,
        "item_cosine": bundle.item_cosine,
        "history_indices": bundle.histories.indices,
        "history_indptr": bundle.histories.indptr,
        "history_seconds": bundle.histories.seconds,
    }


def test_first_load_stores_the_arrays_and_every_large_one_is_mapped(processed, registry_dir):
    directory = arrays_dir_of(processed, registry_dir)
    assert not directory.exists()
    first = load_bundle(settings_for(processed, registry_dir))
    manifest = json.loads((directory / array_store.MANIFEST_FILE).read_text())
    assert manifest["key"]["model_id"] == first.model_id
    assert (
        manifest["info"]["embedding_meta"]["embedding_version"] == first.info["embedding_version"]
    )
    second = load_bundle(settings_for(processed, registry_dir))
    for bundle in (first, second):
        for name, array in _large_arrays(bundle).items():
            assert array is not None, name
            assert mapped(array), f"{name} is a private copy"
            assert not array.flags.writeable, name


def test_mapped_bundle_answers_exactly_as_one_computed_in_memory(processed, registry_dir):
    settings = settings_for(processed, registry_dir)
    stored = load_bundle(settings)
    data = load_processed(processed)
    histories = UserHistories.from_interactions(
        data.interactions, data.user_ids, data.item_index, data.trainable_user_ids
    )
    metadata = Registry(registry_dir).load().metadata
    metadata = {**metadata, "model_id": stored.model_id}
    embeddings, meta = bundle_module._embeddings(
        processed, stored.catalogue.item_ids, metadata.get("embedding_version")
    )
    computed = build_bundle(
        stored.catalogue,
        histories,
        np.array(stored.model.item_factors),
        np.array(stored.model.user_factors),
        embeddings,
        metadata,
        hybrid_config(settings, metadata),
        embedding_meta=meta,
        item_item=None if stored.model.item_item is None else np.array(stored.model.item_item),
    )
    for name in HISTORY_ARRAYS:
        left, right = getattr(stored.histories, name), getattr(computed.histories, name)
        assert (left is None and right is None) or np.array_equal(left, right), name
    assert np.array_equal(stored.model.popularity, computed.model.popularity)
    assert np.array_equal(stored.unknown_order, computed.unknown_order)
    assert (stored.model.item_similarity != computed.model.item_similarity).nnz == 0
    users = list(stored.histories.user_ids[:150]) + ["new-visitor"]
    answers = []
    for bundle in (stored, computed):
        engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
        answers.append([r.as_dict() for r in engine.recommend_batch(users, topk=10)])
    assert answers[0] == answers[1]


def test_corrupt_stored_array_is_recomputed_not_fatal(processed, registry_dir, caplog):
    settings = settings_for(processed, registry_dir)
    # a copy: the mapped bundle would see an in-place edit (writers only ever rename new files)
    reference = np.array(load_bundle(settings).model.item_similarity.data)
    directory = arrays_dir_of(processed, registry_dir)
    path = directory / "knn_data.npy"
    raw = bytearray(path.read_bytes())
    raw[-8:] = b"\xff" * 8
    path.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="recommender.serving.array_store"):
        again = load_bundle(settings)
    assert "unreadable" in caplog.text and "knn_data.npy" in caplog.text
    assert np.array_equal(again.model.item_similarity.data, reference)
    assert (
        array_store.read_arrays(
            directory, json.loads((directory / array_store.MANIFEST_FILE).read_text())["key"]
        )
        is not None
    )  # rewritten whole


def test_truncated_or_missing_file_is_recomputed(processed, registry_dir):
    settings = settings_for(processed, registry_dir)
    load_bundle(settings)
    directory = arrays_dir_of(processed, registry_dir)
    (directory / "history_indices.npy").write_bytes(b"\x93NUMPY")
    assert load_bundle(settings).histories.indices.size > 0
    (directory / "embeddings.npy").unlink()
    assert load_bundle(settings).model.embeddings is not None


def test_new_embeddings_file_makes_the_set_stale(processed, registry_dir):
    settings = settings_for(processed, registry_dir)
    load_bundle(settings)
    directory = arrays_dir_of(processed, registry_dir)
    before = (directory / array_store.MANIFEST_FILE).stat().st_mtime_ns
    path = processed / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    load_bundle(settings)
    assert (directory / array_store.MANIFEST_FILE).stat().st_mtime_ns != before


def test_stored_set_spares_reading_the_interactions(processed, registry_dir, monkeypatch):
    settings = settings_for(processed, registry_dir)
    load_bundle(settings)

    def refuse(*args, **kwargs):
        raise AssertionError("histories were rebuilt from interactions.parquet")

    monkeypatch.setattr(UserHistories, "from_interactions", refuse)
    assert load_bundle(settings).histories.n_users > 0


def test_unwritable_store_serves_from_memory(processed, registry_dir, monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise ArtifactWriteError(28, "No space left on device", "serving_arrays")

    monkeypatch.setattr(bundle_module, "write_arrays", fail)
    with caplog.at_level(logging.WARNING, logger="recommender.serving.bundle"):
        bundle = load_bundle(settings_for(processed, registry_dir))
    assert "private copy" in caplog.text
    assert bundle.histories.n_users > 0 and not mapped(bundle.model.item_similarity.data)


def test_model_factors_are_memory_mapped(registry_dir):
    loaded = Registry(registry_dir).load()
    assert mapped(loaded.user_factors) and mapped(loaded.item_factors)
    assert loaded.item_factors.dtype == np.float32


def test_mapped_arrays_are_plain_ndarray_views(processed, registry_dir):
    """Indexing a np.memmap costs ~4 us of Python per call (a request indexes a dozen of them):
    the bundle holds plain ndarray views of the maps, still backed by the files."""
    bundle = load_bundle(settings_for(processed, registry_dir))
    bundle = load_bundle(settings_for(processed, registry_dir))  # from the stored arrays
    for name, array in _large_arrays(bundle).items():
        assert type(array) is np.ndarray, name
        assert mapped(array), f"{name} is a private copy"
    loaded = Registry(registry_dir).load()
    assert type(loaded.item_factors) is np.ndarray and mapped(loaded.item_factors)
