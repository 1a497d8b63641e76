"""TF-IDF + SVD encoder: shapes, unit rows, determinism, normalisation invariance, save/load."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest

from recommender.embeddings import get_encoder, load_encoder
from recommender.embeddings.tfidf import TfidfEncoder
from recommender.errors import EncoderError, ModelLoadError

CATALOGUE = [
    "Sữa Rửa Mặt CeraVe cho da dầu . làm sạch sâu, kiểm soát dầu",
    "Sữa Rửa Mặt Cosrx dịu nhẹ . làm sạch cho da nhạy cảm",
    "Kem Chống Nắng Anessa SPF50+ . chống nắng, chống nước",
    "Kem Chống Nắng La Roche-Posay . chống tia UV cho da nhạy cảm",
    "Nước Tẩy Trang Bioderma . tẩy trang làm sạch lớp trang điểm",
    "Mặt Nạ Giấy Innisfree trà xanh . cấp ẩm tức thì",
    "Serum Klairs Vitamin C . làm sáng da, mờ thâm",
    "Kem Dưỡng Ẩm Cetaphil . dưỡng ẩm cho da khô",
]


@pytest.fixture(scope="module")
def fitted() -> TfidfEncoder:
    encoder = get_encoder("tfidf", dim=6)
    assert isinstance(encoder, TfidfEncoder)
    return encoder.fit(CATALOGUE)  # type: ignore[return-value]


def test_shape_dtype_and_unit_rows(fitted: TfidfEncoder) -> None:
    vectors = fitted.encode(CATALOGUE)
    assert vectors.shape == (8, 6)
    assert fitted.dim == 6
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_dim_is_capped_by_a_tiny_catalogue() -> None:
    encoder = get_encoder("tfidf", dim=256).fit(CATALOGUE)
    assert encoder.dim == len(CATALOGUE)
    assert encoder.encode(["kem chống nắng"]).shape == (1, len(CATALOGUE))


def test_fit_and_encode_are_deterministic(fitted: TfidfEncoder) -> None:
    again = get_encoder("tfidf", dim=6).fit(CATALOGUE)
    np.testing.assert_array_equal(fitted.encode(CATALOGUE), again.encode(CATALOGUE))


def test_decomposed_unicode_and_abbreviations_give_identical_vectors(fitted: TfidfEncoder) -> None:
    composed = "Kem Chống Nắng cho da nhạy cảm"
    decomposed = unicodedata.normalize("NFD", composed)
    abbreviated = "KCN cho dnc"
    vectors = fitted.encode([composed, decomposed, abbreviated])
    np.testing.assert_array_equal(vectors[0], vectors[1])
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)


def test_same_category_products_are_nearest(fitted: TfidfEncoder) -> None:
    vectors = fitted.encode(CATALOGUE)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -1)
    assert similarity[0].argmax() == 1  # cleanser -> cleanser
    assert similarity[2].argmax() == 3  # sunscreen -> sunscreen


def test_unknown_text_gives_a_zero_row(fitted: TfidfEncoder) -> None:
    vectors = fitted.encode(["", "zzzzqqq"])
    assert not vectors.any()


def test_save_and_load_reproduce_the_vectors(fitted: TfidfEncoder, tmp_path: Path) -> None:
    fitted.save(tmp_path / "enc")
    assert not list((tmp_path / "enc").glob("*.pkl"))
    loaded = load_encoder(tmp_path / "enc")
    assert loaded.name == fitted.name
    # the projection is stored as float16
    np.testing.assert_allclose(loaded.encode(CATALOGUE), fitted.encode(CATALOGUE), atol=2e-3)


def test_corrupt_state_is_a_load_error(fitted: TfidfEncoder, tmp_path: Path) -> None:
    fitted.save(tmp_path / "enc")
    (tmp_path / "enc" / "word_idf.npy").write_bytes(b"not numpy")
    with pytest.raises(ModelLoadError, match="corrupt"):
        load_encoder(tmp_path / "enc")
    with pytest.raises(ModelLoadError, match="not found"):
        load_encoder(tmp_path / "missing")


def test_variants_without_segmentation_or_char_ngrams() -> None:
    plain = get_encoder("tfidf", dim=4, segment_words=False, char_ngrams=None).fit(CATALOGUE)
    assert plain.name == "tfidf-w12-svd4"
    assert plain.encode(CATALOGUE).shape == (8, 4)


def test_bad_use_is_an_encoder_error(fitted: TfidfEncoder) -> None:
    with pytest.raises(EncoderError, match="not fitted"):
        get_encoder("tfidf").encode(["x"])
    with pytest.raises(EncoderError, match="list of texts"):
        fitted.encode("kem chống nắng")  # type: ignore[arg-type]
    with pytest.raises(EncoderError, match="no words"):
        get_encoder("tfidf").fit(["", " . "])
    with pytest.raises(EncoderError, match="unknown encoder 'word2vec'"):
        get_encoder("word2vec")
    with pytest.raises(EncoderError, match="only used by the transformers"):
        get_encoder("tfidf", model="vinai/phobert-base")
