"""load_bundle on the real fixtures: contents, and every compatibility check that must refuse."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from recommender import cli
from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.data import load_processed
from recommender.embeddings import load_embeddings, save_embeddings
from recommender.errors import ModelLoadError
from recommender.registry import Registry
from recommender.serving import load_bundle


def settings_for(processed: Path, registry: Path, **extra) -> ServingSettings:
    return ServingSettings.model_validate(
        {"paths": {"processed_dir": str(processed), "registry_dir": str(registry)}, **extra}
    )


@pytest.fixture(scope="module")
def bundle(embedded_dir, registry_dir):
    return load_bundle(settings_for(embedded_dir, registry_dir))


def test_bundle_matches_registry_and_data(bundle, embedded_dir, registry_dir):
    data = load_processed(embedded_dir)
    current = Registry(registry_dir).current()
    loaded = Registry(registry_dir).load()
    assert bundle.model_id == current.model_id
    assert bundle.info["model_type"] == current.model_type
    assert bundle.info["data_version"] == data.data_version
    assert bundle.info["embedding_version"] == current.embedding_version
    assert bundle.catalogue.item_ids == tuple(data.item_ids)
    assert list(bundle.histories.user_ids) == [str(u) for u in data.user_ids]
    assert bundle.histories.n_trainable == len(data.trainable_user_ids)
    np.testing.assert_array_equal(bundle.model.item_factors, loaded.item_factors)
    assert bundle.marker == Registry(registry_dir).current_marker()
    assert bundle.hybrid.to_dict() == loaded.metadata["hybrid"]
    # the full history (train + val + test) of every user
    for user, group in data.interactions.groupby(V.USER_ID):
        row = bundle.histories.index[str(user)]
        expected = {bundle.catalogue.index[str(p)] for p in group[V.PRODUCT_ID]}
        assert set(bundle.histories.items(row).tolist()) == expected
        break
    assert len(bundle.histories.indices) == len(data.interactions)
    # trainable users' CF rows follow trainable_user_mapping.json
    first = data.trainable_user_ids[0]
    assert bundle.histories.cf_rows[bundle.histories.index[first]] == 0


def test_bundle_arrays_are_read_only(bundle):
    for array in (
        bundle.histories.indices,
        bundle.histories.indptr,
        bundle.catalogue.price,
        bundle.unknown_scores,
        bundle.item_unit_factors,
    ):
        with pytest.raises(ValueError):
            array[0] = 0


def test_no_current_model(embedded_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="no current model") as caught:
        load_bundle(settings_for(embedded_dir, tmp_path / "empty"))
    # the hint's command is one the CLI accepts as written (it used to lack the required --input)
    hint = re.search(r"`python -m recommender (build [^`]*)`", str(caught.value))
    assert hint is not None, str(caught.value)
    args = cli._parser("build").parse_args(hint.group(1).split())
    assert (args.source, args.input) == ("demo", "data/raw/demo")


def test_missing_processed_data(registry_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="prepare"):
        load_bundle(settings_for(tmp_path / "nothing", registry_dir))


def _copy_registry(registry_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "cf"
    shutil.copytree(registry_dir, target)
    return target


def test_corrupt_model_file_is_refused(embedded_dir, registry_dir, tmp_path):
    registry = _copy_registry(registry_dir, tmp_path)
    model_dir = Path(Registry(registry).current().path)
    np.save(model_dir / V.ITEM_FACTORS_FILE, np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(ModelLoadError):
        load_bundle(settings_for(embedded_dir, registry))
    (model_dir / V.ITEM_FACTORS_FILE).unlink()
    with pytest.raises(ModelLoadError):
        load_bundle(settings_for(embedded_dir, registry))


def test_data_version_mismatch_is_refused(embedded_dir, registry_dir, tmp_path):
    registry = _copy_registry(registry_dir, tmp_path)
    state = json.loads((registry / V.REGISTRY_FILE).read_text())
    current = state["current"]
    state["models"][current]["data_version"] = "someotherdata"
    (registry / V.REGISTRY_FILE).write_text(json.dumps(state))
    with pytest.raises(ModelLoadError, match="data"):
        load_bundle(settings_for(embedded_dir, registry))


def test_embedding_version_mismatch_is_refused(embedded_dir, registry_dir, tmp_path):
    processed = tmp_path / "processed"
    shutil.copytree(embedded_dir, processed)
    path = processed / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    store = load_embeddings(path)
    shuffled = np.roll(store.embeddings, 1, axis=0).copy()
    save_embeddings(path, shuffled, store.product_ids, dict(store.metadata))
    with pytest.raises(ModelLoadError, match="embedding_version"):
        load_bundle(settings_for(processed, registry_dir))


def test_invalid_config_weights_refused(embedded_dir, registry_dir):
    settings = settings_for(embedded_dir, registry_dir, rerank={"weights": {"cold": {"cf": -1}}})
    with pytest.raises(ModelLoadError, match="rerank.weights"):
        load_bundle(settings)


def test_loading_hands_pyarrow_buffers_back(embedded_dir, registry_dir, monkeypatch):
    """Every worker reads the products table once; its buffers must not stay in pyarrow's pool
    (private memory per worker that memory-mapping cannot share)."""
    import pyarrow as pa

    released: list[bool] = []
    pool = pa.default_memory_pool()
    monkeypatch.setattr(pa, "default_memory_pool", lambda: _Recording(pool, released))
    load_bundle(settings_for(embedded_dir, registry_dir))
    assert released == [True]


class _Recording:
    def __init__(self, pool, calls: list[bool]) -> None:
        self.pool, self.calls = pool, calls

    def release_unused(self) -> None:
        self.calls.append(True)
        self.pool.release_unused()

    def __getattr__(self, name):
        return getattr(self.pool, name)


def test_models_derived_from_one_model_share_one_transposed_factor_copy():
    """36 MB a model at 50K products × 188 factors: the candidate stage, exact, refold and stale
    models of one bundle used to compute their own copy each, in every worker."""
    from tests.recommender.serving.conftest import make_bundle

    model = make_bundle().model
    derived = [dataclasses.replace(model, popularity=model.popularity.copy()), model.exact_model]
    assert all(m.item_factors_t is model.item_factors_t for m in derived)
    assert model.item_factors_t.flags.c_contiguous
    np.testing.assert_array_equal(model.item_factors_t, model.item_factors.T)
    other = dataclasses.replace(model, item_factors=model.item_factors + 1)  # a live model
    assert other.item_factors_t is not model.item_factors_t
    np.testing.assert_array_equal(other.item_factors_t, other.item_factors.T)
