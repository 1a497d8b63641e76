"""product_embeddings.pt: round trip, contract checks, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from recommender.embeddings import ProductEmbeddings, load_embeddings, save_embeddings
from recommender.embeddings.store import embedding_version
from recommender.errors import InvalidDataError, ModelLoadError


def _unit(n: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_round_trip_keeps_rows_ids_and_metadata(tmp_path: Path) -> None:
    emb, ids = _unit(3, 4), ["b", "a", "c"]
    path = save_embeddings(tmp_path / "e" / "product_embeddings.pt", emb, ids, {"encoder": "tfidf"})
    loaded = load_embeddings(path)
    assert isinstance(loaded, ProductEmbeddings)
    np.testing.assert_array_equal(loaded.embeddings, emb)
    assert loaded.embeddings.dtype == np.float32
    assert loaded.product_ids == ["b", "a", "c"]
    assert loaded.index() == {"b": 0, "a": 1, "c": 2}
    assert loaded.metadata == {
        "encoder": "tfidf",
        "dim": 4,
        "embedding_version": embedding_version(emb, ids),
    }
    assert len(loaded.metadata["embedding_version"]) == 16
    assert not loaded.embeddings.flags.writeable
    raw = torch.load(path, weights_only=True)
    assert raw["embeddings"].dtype == torch.float32
    assert list(tmp_path.joinpath("e").iterdir()) == [path]  # no temporary files left


@pytest.mark.parametrize(
    ("emb", "ids", "message"),
    [
        (np.ones((2, 3), dtype=np.float64), ["a", "b"], "float32"),
        (np.ones((2, 3), dtype=np.float32), ["a"], "2 embedding rows but 1"),
        (np.ones((2, 3), dtype=np.float32), ["a", "a"], "not unique"),
        (np.array([[1, np.nan]], dtype=np.float32), ["a"], "NaN"),
        (np.array([[1, 0], [0, 0]], dtype=np.float32), ["a", "b"], "all-zero rows .*product b"),
        (np.ones(3, dtype=np.float32), ["a"], "2-D"),
    ],
)
def test_save_rejects_contract_violations(
    tmp_path: Path, emb: np.ndarray, ids: list[str], message: str
) -> None:
    with pytest.raises(InvalidDataError, match=message):
        save_embeddings(tmp_path / "x.pt", emb, ids, {})
    assert not list(tmp_path.iterdir())


def test_missing_file_says_run_embed(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="recommender embed"):
        load_embeddings(tmp_path / "none.pt")


def test_garbage_and_foreign_files_are_load_errors(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(ModelLoadError, match="not a readable"):
        load_embeddings(garbage)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    with pytest.raises(ModelLoadError, match="expected a dict"):
        load_embeddings(foreign)


def test_tampered_rows_fail_the_checksum(tmp_path: Path) -> None:
    path = save_embeddings(tmp_path / "e.pt", _unit(3, 4), ["a", "b", "c"], {})
    payload = torch.load(path, weights_only=True)
    payload["embeddings"][0, 0] += 0.5
    torch.save(payload, path)
    with pytest.raises(ModelLoadError, match="checksum"):
        load_embeddings(path)
