"""The registered factors are refit on every split; the metrics stay those of the train+val fit."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.data.processed import ProcessedData
from recommender.registry import Registry
from recommender.training.pipeline import TrainingRun, run_training
from recommender.training.publish import register_run
from tests.fixtures.models import fast_settings
from tests.recommender.training.synthetic import synthetic_data

NEW_ITEM = "p-test-only"


def _with_test_only_item(users: int = 12) -> tuple[ProcessedData, list[str]]:
    """Synthetic data where ``NEW_ITEM`` is the test positive of ``users`` trainable users only."""
    data = synthetic_data(users=300, items=40, seed=3)
    frame = data.interactions.copy()
    test_rows = frame.index[frame[V.SPLIT] == V.SPLIT_TEST][:users]
    frame.loc[test_rows, V.PRODUCT_ID] = NEW_ITEM
    products = pd.concat(
        [data.products, pd.DataFrame({V.PRODUCT_ID: [NEW_ITEM], V.NAME: ["new"]})],
        ignore_index=True,
    )
    changed = dataclasses.replace(
        data, interactions=frame, products=products, item_ids=[*data.item_ids, NEW_ITEM]
    )
    return changed, frame.loc[test_rows, V.USER_ID].tolist()


@pytest.fixture(scope="module")
def trained() -> tuple[ProcessedData, list[str], TrainingRun]:
    data, users = _with_test_only_item()
    run = run_training(data, fast_settings(), (V.MODEL_ALS,), embeddings=False)
    return data, users, run


def test_the_deployed_factors_include_every_trainable_users_test_item(trained) -> None:
    data, users, run = trained
    model = run.models[V.MODEL_ALS]
    evaluated, deployed = model.factors, model.served
    assert model.deployed_fit == V.FIT_ALL and deployed is not evaluated
    # same CF rows (one per trainable user) and items in both fits
    assert deployed.user_factors.shape == evaluated.user_factors.shape
    assert deployed.user_factors.shape[0] == len(data.trainable_user_ids)
    assert deployed.item_factors.shape == evaluated.item_factors.shape
    new = data.item_index[NEW_ITEM]
    # an item seen only in test positives: no evidence (a zero factor) in the evaluated fit
    assert np.linalg.norm(evaluated.item_factors[new]) == pytest.approx(0.0, abs=1e-6)
    assert np.linalg.norm(deployed.item_factors[new]) > 0.05
    rows = [data.trainable_index[u] for u in users]
    before = evaluated.user_factors[rows] @ evaluated.item_factors[new]
    after = deployed.user_factors[rows] @ deployed.item_factors[new]
    assert np.all(after > before + 1e-3)
    # and every trainable user's test item ranks higher on average in the deployed fit
    test = data.interactions[data.interactions[V.SPLIT] == V.SPLIT_TEST]
    cf = test[V.USER_ID].map(data.trainable_index).to_numpy()
    items = test[V.PRODUCT_ID].map(data.item_index).to_numpy()

    def mean_rank(factors) -> float:
        scores = factors.user_factors[cf] @ factors.item_factors.T
        target = scores[np.arange(len(cf)), items]
        return float((scores > target[:, None]).sum(axis=1).mean())

    assert mean_rank(deployed) < mean_rank(evaluated) - 1.0


def test_the_registry_says_which_fit_the_metrics_describe(trained, tmp_path: Path) -> None:
    data, _, run = trained
    registry = Registry(tmp_path / "cf")
    record = register_run(registry, run, fast_settings())[V.MODEL_ALS]
    loaded = registry.load(record.model_id)
    assert record.metrics["fit"] == "train+val" and record.metrics["deployed_fit"] == "all"
    assert loaded.metadata["metrics"]["fit"] == "train+val"
    assert loaded.metadata["deployed_fit"] == "all" and loaded.params["deployed_fit"] == "all"
    served = run.models[V.MODEL_ALS].served
    np.testing.assert_array_equal(loaded.user_factors, served.user_factors.astype(np.float32))
    np.testing.assert_array_equal(loaded.item_factors, served.item_factors.astype(np.float32))
    # the test table registered is that of the train+val fit, computed before the refit
    report = json.loads((Path(record.path) / V.EVALUATION_FILE).read_text())
    hybrid = report["segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]["metrics"]["ndcg@10"]
    assert record.gate_value == pytest.approx(hybrid["mean"], abs=1e-6)
    newest = data.interactions[V.TIMESTAMP].max()
    assert loaded.metadata["data_cutoff"] == pytest.approx(newest.timestamp())
    assert loaded.metadata["events_seq"] == 0


def test_deployed_fit_train_val_registers_the_evaluated_fit() -> None:
    data, _ = _with_test_only_item()
    settings = fast_settings().model_copy(update={"deployed_fit": "train+val"})
    model = run_training(data, settings, (V.MODEL_ALS,), embeddings=False).models[V.MODEL_ALS]
    assert model.deployed is None and model.served is model.factors
    assert model.deployed_fit == V.FIT_TRAIN_VAL
