"""The torch-free reader of product_embeddings.pt equals the torch loader, and refuses the rest."""

from __future__ import annotations

import pickle
import zipfile

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.embeddings import load_embeddings, save_embeddings
from recommender.serving.embedding_file import read_embeddings


def test_same_as_the_torch_loader(embedded_dir):
    path = embedded_dir / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    quick = read_embeddings(path)
    reference = load_embeddings(path)
    assert quick is not None
    embeddings, ids, metadata = quick
    assert embeddings.dtype == np.float32 and not embeddings.flags.writeable
    np.testing.assert_array_equal(embeddings, reference.embeddings)
    assert ids == reference.product_ids and metadata == reference.metadata


def test_small_file_roundtrip(tmp_path):
    path = tmp_path / "e.pt"
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3) + 1
    save_embeddings(path, matrix, ["a", "b", "c", "d"], {"model_name": "x"})
    embeddings, ids, metadata = read_embeddings(path)
    np.testing.assert_array_equal(embeddings, matrix)
    assert ids == ["a", "b", "c", "d"] and metadata["model_name"] == "x"


def test_tampered_or_foreign_files_fall_back(tmp_path):
    path = tmp_path / "e.pt"
    save_embeddings(path, np.ones((2, 2), dtype=np.float32), ["a", "b"], {})
    # change one stored value: the embedding_version checksum no longer matches
    with zipfile.ZipFile(path) as archive:
        entries = {n: archive.read(n) for n in archive.namelist()}
    name = next(n for n in entries if n.endswith("data/0"))
    entries[name] = np.full(4, 2.0, dtype="<f4").tobytes()
    tampered = tmp_path / "tampered.pt"
    with zipfile.ZipFile(tampered, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data)
    assert read_embeddings(tampered) is None
    assert read_embeddings(tmp_path / "missing.pt") is None
    plain = tmp_path / "plain.pt"
    plain.write_bytes(pickle.dumps({"embeddings": 1}))
    assert read_embeddings(plain) is None


def test_refuses_globals_it_does_not_know(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x/data.pkl", pickle.dumps({"embeddings": print}))
    assert read_embeddings(path) is None  # builtins.print is never resolved


@pytest.mark.parametrize("dtype", [np.float64])
def test_non_float32_is_left_to_the_torch_loader(tmp_path, dtype):
    import torch

    path = tmp_path / "d.pt"
    torch.save(
        {
            "embeddings": torch.ones(2, 2, dtype=torch.float64),
            "product_ids": ["a", "b"],
            "metadata": {},
        },
        path,
    )
    assert read_embeddings(path) is None
