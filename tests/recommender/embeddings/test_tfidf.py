"""TF-IDF + SVD encoder: shapes, unit rows, determinism, normalisation invariance, save/load."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender.embeddings import get_encoder, load_encoder, tfidf
from recommender.embeddings.tfidf import WORD_TOKEN_PATTERN, TfidfEncoder
from recommender.errors import EncoderError, ModelLoadError
from recommender.text.normalisation import normalise_text
from recommender.text.segmentation import segment

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


def test_weights_are_scikit_learns_tfidf(fitted: TfidfEncoder) -> None:
    """Both blocks equal TfidfVectorizer(sublinear_tf, smooth_idf) over the same analyzers, and
    the idf of each term comes from the number of products that contain it."""
    x = fitted._features(CATALOGUE, fit=False)
    words = [segment(normalise_text(t, lowercase=False)).lower() for t in CATALOGUE]
    word_ref = TfidfVectorizer(
        token_pattern=WORD_TOKEN_PATTERN, ngram_range=(1, 2), lowercase=False, sublinear_tf=True
    )
    chars = [normalise_text(t) for t in CATALOGUE]
    char_ref = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 4), lowercase=False, min_df=2, sublinear_tf=True
    )
    expected = np.hstack(
        [word_ref.fit_transform(words).toarray(), char_ref.fit_transform(chars).toarray()]
    )
    np.testing.assert_allclose(x.toarray(), expected, rtol=1e-12, atol=1e-12)
    documents = [set(word_ref.build_analyzer()(doc)) for doc in words]
    terms = word_ref.get_feature_names_out()
    df = np.array([sum(term in doc for doc in documents) for term in terms])
    np.testing.assert_allclose(fitted._word_idf, np.log(9 / (1 + df)) + 1, rtol=1e-12)
    assert df.max() >= 3  # "da" and "làm_sạch" are in several products: df is per term


def _synthetic_catalogue(n: int, vocabulary: list[str], seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocabulary, size=4)) for _ in range(n)]


@pytest.mark.parametrize(("n_products", "n_words"), [(300, 5), (40, 400)])
def test_fits_more_products_than_terms_and_more_terms_than_products(
    n_products: int, n_words: int
) -> None:
    """300 products over 5 words have far fewer features than products (the 50,000-product
    crash: idf had one entry per product); 40 products over 400 words the other way round."""
    vocabulary = [f"từ{k}" for k in range(n_words)]
    texts = _synthetic_catalogue(n_products, vocabulary)
    encoder = get_encoder("tfidf", dim=8, segment_words=False).fit(texts)
    assert isinstance(encoder, TfidfEncoder)
    n_features = encoder._n_features
    assert (n_features < n_products) == (n_products == 300)
    assert len(encoder._word_idf) == len(encoder._word.get_feature_names_out())
    vectors = encoder.encode(texts[:5] + ["từ1 từ2"])
    assert vectors.shape == (6, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_text_preparation_matches_the_two_normalisations_it_replaces() -> None:
    """One cased normalisation feeds both analysers: the word input is pyvi over the cased text,
    lower-cased, the char input ``normalise_text(t)`` (lower-cased normalisation)."""
    texts = [*CATALOGUE, "KCN cho dnc", "", "Sữa Rửa Mặt. Kem Dưỡng!"]
    words, chars = tfidf.prepare_texts(texts, segment_words=True)
    assert words == [segment(normalise_text(t, lowercase=False)).lower() for t in texts]
    assert chars == [normalise_text(t) for t in texts]
    assert tfidf.prepare_texts(texts, segment_words=False) == (chars, chars)


def test_large_catalogues_prepare_their_texts_in_two_processes_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    texts = [f"{t} số {k}" for k in range(6) for t in CATALOGUE]
    monkeypatch.setattr(tfidf, "PARALLEL_MIN_TEXTS", 10)
    assert tfidf.prepare_texts_parallel(texts, True) == tfidf.prepare_texts(texts, True)


def test_large_catalogues_fit_the_svd_on_a_seeded_sample_in_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Above GRAM_MAX_PRODUCTS the projection is randomized SVD of SVD_SAMPLE_PRODUCTS rows (the
    same rows every time), so its cost stops growing with the catalogue; every row is encoded."""
    monkeypatch.setattr(tfidf, "GRAM_MAX_PRODUCTS", 50)
    monkeypatch.setattr(tfidf, "SVD_SAMPLE_PRODUCTS", 80)
    texts = _synthetic_catalogue(200, [f"từ{k}" for k in range(60)])
    rows = tfidf.svd_sample_rows(200, seed=42)
    assert len(rows) == 80 and np.all(np.diff(rows) > 0)
    np.testing.assert_array_equal(rows, tfidf.svd_sample_rows(200, seed=42))
    np.testing.assert_array_equal(tfidf.svd_sample_rows(70, seed=42), np.arange(70))
    encoder = get_encoder("tfidf", dim=8, segment_words=False).fit(texts)
    assert isinstance(encoder, TfidfEncoder) and encoder._fit_features is not None
    x = encoder._fit_features[1]  # the fitted features (a re-transform differs by ~1e-16)
    expected = TruncatedSVD(
        n_components=8, algorithm="randomized", n_iter=tfidf.SVD_POWER_ITERATIONS, random_state=42
    ).fit(sp.csr_matrix(x[rows], dtype=np.float32))
    assert encoder._projection is not None
    np.testing.assert_array_equal(encoder._projection, expected.components_.T)
    vectors = encoder.encode(texts)
    assert vectors.shape == (200, 8)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_features_are_the_rows_the_projection_encodes(fitted: TfidfEncoder) -> None:
    """``features`` (what scripts/content_baseline.py scores without the SVD) is the sparse
    TF-IDF that ``encode`` projects (then scales to unit rows); an unfitted encoder says so."""
    x = fitted.features(CATALOGUE)
    assert x.shape == (8, fitted._n_features)
    assert fitted._projection is not None
    projected = x.astype(np.float32) @ fitted._projection
    expected = projected / np.linalg.norm(projected, axis=1, keepdims=True)  # encode: unit rows
    np.testing.assert_allclose(fitted.encode(CATALOGUE), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(EncoderError, match=r"fit\(\) before features"):
        TfidfEncoder().features(["kem"])
