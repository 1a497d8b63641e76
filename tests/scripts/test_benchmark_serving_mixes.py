"""The serving benchmark's uncached mixes really miss every cache, and its peer app answers what
it claims (top-k of the same factors, seen items filtered). No server is started here."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from benchmark_serving import engine_times, split_users  # noqa: E402


def test_uncached_mixes_are_disjoint_known_users(processed_dir):
    users = split_users(processed_dir, distinct=500, compare=50, batches=2, seed=3)
    trainable = set(
        json.loads((processed_dir / "trainable_user_mapping.json").read_text())["user_ids"]
    )
    known = set(json.loads((processed_dir / "user_item_mappings.json").read_text())["user_ids"])
    peer, batch, uncached = users["peer"], users["batch"], users["uncached"]
    assert len(peer) == 50 and set(peer) <= trainable
    assert len(batch) == 2000 and len(uncached) == 500
    everyone = peer + batch + uncached
    assert len(set(everyone)) == len(everyone)  # nobody twice: every request a cache miss
    assert set(everyone) <= known
    share = sum(u in trainable for u in uncached) / len(uncached)
    assert 0 < share < 0.5  # trainable and cold mixed


def test_engine_times_report_every_segment_and_the_batch_ratio(embedded_dir, registry_dir):
    users = split_users(embedded_dir, distinct=300, compare=10, batches=1, seed=1)
    report = engine_times(embedded_dir, registry_dir, users, count=20)
    for key in ("trainable", "cold", "unknown", "known"):
        assert report[f"{key}_ms_per_user"] > 0
    assert report["batch_over_one_by_one"] == pytest.approx(
        report["batch_1000_ms"] / report["same_1000_one_by_one_ms"], abs=1e-3
    )
    rounds = report["batch_over_one_by_one_rounds"]  # medians of rounds in alternated order
    assert len(rounds) == 3 and min(rounds) <= report["batch_over_one_by_one"] * 1.001
    assert report["batch_over_one_by_one"] <= max(rounds) * 1.001 + 1e-3


def test_reference_app_is_top_k_of_the_same_factors_without_seen_items(
    embedded_dir, registry_dir, monkeypatch
):
    monkeypatch.setenv("RECSYS_PATHS__PROCESSED_DIR", str(embedded_dir))
    monkeypatch.setenv("RECSYS_PATHS__REGISTRY_DIR", str(registry_dir))
    sys.modules.pop("reference_implicit_app", None)
    module = importlib.import_module("reference_implicit_app")
    client = TestClient(module.app)
    user, row = next(iter(module.USER_ROW.items()))
    body = client.post("/recommend", json={"user_id": user, "topk": 5}).json()
    got = [item["product_id"] for item in body["recommendations"]]
    scores = module.MODEL.user_factors[row] @ module.MODEL.item_factors.T
    scores[module.SEEN[row].indices] = -np.inf
    assert got == [module.ITEM_IDS[i] for i in np.argsort(-scores, kind="stable")[:5]]
    assert client.post("/recommend", json={"user_id": "nobody", "topk": 5}).status_code == 404
