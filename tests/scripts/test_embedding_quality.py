"""scripts/embedding_quality.py: category rule and the retrieval metrics it reports."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "embedding_quality.py"


@pytest.fixture(scope="module")
def quality() -> ModuleType:
    spec = importlib.util.spec_from_file_location("embedding_quality", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["embedding_quality"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("Sữa Rửa Mặt CeraVe Cho Da Dầu 473ml", "cleanser"),
        ("Gel Rửa Mặt La Roche-Posay", "cleanser"),
        ("Kem Chống Nắng Anessa SPF50+", "sunscreen"),
        ("[Mini] Nước Tẩy Trang Bioderma", "makeup_remover"),
        ("Combo 2 Mặt Nạ Banobagi", "mask"),
        ("Hộp 10 Miếng Mặt Nạ Innisfree", "mask"),
        ("Tinh Chất Klairs Vitamin C", "serum"),
        ("Nước Hoa Hồng Klairs", "toner"),
        ("Máy Rửa Mặt Halio", None),
    ],
)
def test_category_from_leading_words(quality: ModuleType, name: str, category: str | None) -> None:
    assert quality.category_of(name) == category


def test_identical_descriptions_count_as_ties(quality: ModuleType) -> None:
    names = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]], dtype=np.float32)
    descriptions = np.array([[0.0, 1.0], [0.0, 1.0], [0.6, 0.8]], dtype=np.float32)
    # own-description scores: product 0 -> 0.0 (d2 scores 0.6: rank 2), product 1 -> 1.0
    # (rank 1; d0's equal score is not better), product 2 -> 0.8 (d0, d1 score 1.0: rank 3)
    mrr, top1 = quality.name_to_description(names, descriptions, ["a", "b", "c"])
    assert mrr == pytest.approx((1 / 2 + 1 + 1 / 3) / 3)
    assert top1 == pytest.approx(1 / 3)
    # d1 and d2 the same text: d1 beating product 2's own text is a tie, only d0 counts (rank 2)
    mrr_tied, _ = quality.name_to_description(names, descriptions, ["a", "b", "b"])
    assert mrr_tied == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)


def test_unlabelled_products_are_no_query_but_stay_in_the_pool(quality: ModuleType) -> None:
    vectors = np.eye(4, dtype=np.float32)[[0, 0, 1, 1]]
    # queries 0 and 1 find each other (x); query 2 (y) finds the unlabelled product 3: a miss
    share = quality.neighbour_category_share(vectors, ["x", "x", "y", None], k=1)
    assert share == pytest.approx(2 / 3)
