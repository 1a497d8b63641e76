"""TF-IDF over pyvi-segmented words + character n-grams -> TruncatedSVD (LSA) -> L2.

Each block (words, chars) is a sublinear, smoothed TF-IDF with unit row norm (scikit-learn's
``TfidfTransformer``: tf = 1 + ln count, idf = ln((1 + n) / (1 + df)) + 1); the blocks are
weighted, stacked and projected on the top ``dim`` right-singular vectors fitted on the catalogue.
Word tokens carry meaning ("sữa_rửa_mặt", "da_dầu"); char n-grams (within word boundaries) catch
brand spellings, typos and diacritic-less variants. Defaults (word 1-2-grams, char 2-4-grams,
at most 20,000 features per block, 512 dims) were chosen on the real Hasaki catalogue with
``scripts/embedding_quality.py``; the feature cap keeps the saved projection bounded (<= 40k x
512 float16 = 40 MB) at no measured cost (MRR 0.862 vs 0.863 uncapped).

The fitted state is saved without pickle: vocabularies as JSON, idf and the SVD projection as
.npy, so loading it never executes code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from tqdm import tqdm

from recommender.embeddings.base import TextEncoder
from recommender.errors import EncoderError, ModelLoadError
from recommender.storage import atomic_save_npy
from recommender.text.normalisation import normalise_text
from recommender.text.segmentation import segment

logger = logging.getLogger(__name__)

WORD_TOKEN_PATTERN = r"(?u)\b\w+\b"
_ARRAYS = ("word_idf", "char_idf", "projection")
GRAM_MAX_PRODUCTS = 8000  # above this the (n x n) Gram matrix costs more than randomized SVD
# Above GRAM_MAX_PRODUCTS the randomized SVD is fit in float32 on a seeded sample of at most this
# many products (every product is still projected): its cost no longer grows with the catalogue.
# 10K products x 8.6K features took 133 s in float64 with 7 power iterations (machine under load),
# 50K products several times that; the sample, float32 and 4 iterations bound it to ~1/4 of that.
SVD_SAMPLE_PRODUCTS = 10_000
SVD_POWER_ITERATIONS = 4
PARALLEL_MIN_TEXTS = 4000  # text preparation (normalise + pyvi) runs in 2 processes above this
TEXT_JOBS = 2
_BAR = "tfidf: segmenting"  # the progress bar of a catalogue fit (tqdm, on a terminal only)
FREQUENT_FEATURE_SHARE = 0.02  # features in > 2% of products go through the dense Gram block
DENSE_BLOCK_ELEMENTS = 10_000_000  # at most ~80 MB of float64 for that block


def _gram(x: sp.csr_matrix) -> np.ndarray:
    """Dense X X^T (float64). Frequent features (short char n-grams, "da", "cho") make the
    sparse product quadratic in the catalogue size, so their columns are multiplied densely with
    BLAS and only the rare rest sparsely; the sum is the exact Gram matrix."""
    n = x.shape[0]
    x = x.tocsc()
    df = np.diff(x.indptr)
    budget = max(1, DENSE_BLOCK_ELEMENTS // max(n, 1))
    frequent = np.argsort(-df, kind="stable")[:budget]
    frequent = np.sort(frequent[df[frequent] > FREQUENT_FEATURE_SHARE * n])
    rare = np.setdiff1d(np.arange(x.shape[1]), frequent, assume_unique=True)
    dense = x[:, frequent].toarray()
    sparse_part = x[:, rare].tocsr()
    return dense @ dense.T + (sparse_part @ sparse_part.T).toarray()


def _top_components(x: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """The top-``k`` right-singular vectors of ``x`` as float32 (k', n_features), k' <= k.

    A shop catalogue has far fewer products than TF-IDF features, so the exact SVD comes from the
    (n x n) Gram matrix: X X^T = U S^2 U^T and V = X^T U S^-1. For 2,000 products that takes
    ~1-2 s where randomized SVD over 10^5 features takes ~10 s, and it is exact and deterministic.
    Signs are fixed (largest |value| of each vector positive). Large catalogues use randomized SVD.
    """
    n = x.shape[0]
    if n > GRAM_MAX_PRODUCTS:
        return _sampled_components(x, k, seed)
    # Only the top k pairs. (driver="evx" was 2x slower here: templated catalogues have clustered
    # eigenvalues; float32 saved ~20% at the cost of exactness.)
    eigenvalues, eigenvectors = scipy.linalg.eigh(_gram(x), subset_by_index=[n - k, n - 1])
    eigenvalues, eigenvectors = eigenvalues[::-1], eigenvectors[:, ::-1]
    keep = eigenvalues > max(float(eigenvalues[0]), 0.0) * 1e-10
    singular = np.sqrt(eigenvalues[keep])
    components = np.asarray(x.T @ eigenvectors[:, keep]).T / singular[:, None]
    flip = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    return (components * flip[:, None]).astype(np.float32)


def svd_sample_rows(n: int, seed: int) -> np.ndarray:
    """Sorted rows the large-catalogue SVD is fit on: all of them up to SVD_SAMPLE_PRODUCTS,
    else a seeded sample of that many (the same rows on every build of the same catalogue)."""
    if n <= SVD_SAMPLE_PRODUCTS:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=SVD_SAMPLE_PRODUCTS, replace=False))


def _sampled_components(x: sp.csr_matrix, k: int, seed: int) -> np.ndarray:
    """Randomized SVD (float32, SVD_POWER_ITERATIONS) of a sample of the catalogue's rows."""
    sample = sp.csr_matrix(x[svd_sample_rows(x.shape[0], seed)], dtype=np.float32)
    svd = TruncatedSVD(
        n_components=k, algorithm="randomized", n_iter=SVD_POWER_ITERATIONS, random_state=seed
    )
    svd.fit(sample)
    return np.asarray(svd.components_, dtype=np.float32)


def prepare_texts(
    texts: list[str], segment_words: bool, bar: bool = False
) -> tuple[list[str], list[str]]:
    """(word-analyser input, char-analyser input) of ``texts``: normalised once (cased), segmented
    with pyvi when ``segment_words`` (it uses capitalisation), then lower-cased. ``bar``: a tqdm
    bar with an ETA on a terminal over the segmentation (a build's catalogue fit, where pyvi takes
    most of the embed time; never while serving).

    ``normalise_text(t)`` is ``normalise_text(t, lowercase=False).lower()``, so the char input is
    the cased normalisation lower-cased rather than a second normalisation pass."""
    cased = [normalise_text(t, lowercase=False) for t in texts]
    chars = [t.lower() for t in cased]
    if not segment_words:
        return chars, chars
    shown = tqdm(cased, desc=_BAR, unit="text", disable=None if bar else True, leave=False)
    return [segment(t).lower() for t in shown], chars


def prepare_texts_parallel(
    texts: list[str], segment_words: bool, bar: bool = False
) -> tuple[list[str], list[str]]:
    """:func:`prepare_texts` in TEXT_JOBS processes for large catalogues (pyvi's CRF is pure
    Python per sentence: ~4 ms a product), in chunks, order kept; small ones in-process."""
    if len(texts) < PARALLEL_MIN_TEXTS:
        return prepare_texts(texts, segment_words, bar)
    from joblib import Parallel, delayed

    size = -(-len(texts) // (4 * TEXT_JOBS))
    chunks = [texts[i : i + size] for i in range(0, len(texts), size)]
    jobs = Parallel(n_jobs=TEXT_JOBS, return_as="generator")
    done = jobs(delayed(prepare_texts)(c, segment_words) for c in chunks)
    shown = tqdm(done, desc=_BAR, total=len(chunks), unit="chunk", disable=None if bar else True)
    parts = list(shown)
    words = [w for part in parts for w in part[0]]
    chars = [c for part in parts for c in part[1]]
    return words, chars


class TfidfEncoder(TextEncoder):
    """Catalogue-fitted LSA encoder; ``dim`` is capped by the catalogue's rank after ``fit``."""

    kind: ClassVar[str] = "tfidf"

    def __init__(
        self,
        dim: int = 512,
        segment_words: bool = True,
        word_ngrams: tuple[int, int] = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 4),
        char_weight: float = 1.0,
        char_min_df: int = 2,
        word_min_df: int = 1,
        max_features: int | None = 20_000,
        seed: int = 42,
    ) -> None:
        super().__init__()
        if dim < 2:
            raise EncoderError(f"tfidf dim must be >= 2, got {dim}.")
        self.requested_dim = int(dim)
        self.segment_words = bool(segment_words)
        self.word_ngrams = (int(word_ngrams[0]), int(word_ngrams[1]))
        self.char_ngrams = (
            None if char_ngrams is None else (int(char_ngrams[0]), int(char_ngrams[1]))
        )
        self.char_weight = float(char_weight)
        self.char_min_df = int(char_min_df)
        self.word_min_df = int(word_min_df)
        self.max_features = None if max_features is None else int(max_features)
        self.seed = int(seed)
        self._word: CountVectorizer | None = None
        self._char: CountVectorizer | None = None
        self._word_idf = np.zeros(0)
        self._char_idf = np.zeros(0)
        # (n_features, dim) float32, C order so that sparse @ projection needs no copy; None: no SVD
        self._projection: np.ndarray | None = None
        self._fit_features: tuple[list[str], sp.csr_matrix] | None = None

    # -- description ---------------------------------------------------------------------------
    @property
    def name(self) -> str:
        words = f"w{self.word_ngrams[0]}{self.word_ngrams[1]}" + (
            "seg" if self.segment_words else ""
        )
        chars = f"-c{self.char_ngrams[0]}{self.char_ngrams[1]}" if self.char_ngrams else ""
        return f"tfidf-{words}{chars}-svd{self.requested_dim}"

    @property
    def dim(self) -> int:
        if self._projection is not None:
            return int(self._projection.shape[1])
        if self._fitted:
            return self._n_features
        return self.requested_dim

    @property
    def _n_features(self) -> int:
        return len(self._word_idf) + len(self._char_idf)

    def params(self) -> dict[str, Any]:
        return {
            "dim": self.requested_dim,
            "segment_words": self.segment_words,
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams) if self.char_ngrams else None,
            "char_weight": self.char_weight,
            "char_min_df": self.char_min_df,
            "word_min_df": self.word_min_df,
            "max_features": self.max_features,
            "seed": self.seed,
        }

    # -- text -> sparse features ---------------------------------------------------------------
    def _new_vectorizers(self, word_vocab: Any = None, char_vocab: Any = None) -> None:
        self._word = CountVectorizer(
            token_pattern=WORD_TOKEN_PATTERN,
            ngram_range=self.word_ngrams,
            lowercase=False,
            min_df=self.word_min_df if word_vocab is None else 1,
            max_features=self.max_features if word_vocab is None else None,
            vocabulary=word_vocab,
            dtype=np.float64,
        )
        self._char = None
        if self.char_ngrams:
            self._char = CountVectorizer(
                analyzer="char_wb",
                ngram_range=self.char_ngrams,
                lowercase=False,
                min_df=self.char_min_df if char_vocab is None else 1,
                max_features=self.max_features if char_vocab is None else None,
                vocabulary=char_vocab,
                dtype=np.float64,
            )

    @staticmethod
    def _weighting(idf: np.ndarray | None = None) -> TfidfTransformer:
        """Sublinear tf x smoothed idf, rows scaled to unit L2 norm; ``idf``: a fitted vector."""
        weighting = TfidfTransformer(norm="l2", use_idf=True, smooth_idf=True, sublinear_tf=True)
        if idf is not None:
            weighting.idf_ = np.asarray(idf, dtype=np.float64)
            weighting.n_features_in_ = len(idf)
        return weighting

    @classmethod
    def _weighted(
        cls, counts: sp.csr_matrix, idf: np.ndarray | None
    ) -> tuple[sp.csr_matrix, np.ndarray]:
        """TF-IDF rows of ``counts``, with ``idf`` (fitted on ``counts`` when None) and the idf."""
        weighting = cls._weighting(idf)
        x = weighting.fit_transform(counts) if idf is None else weighting.transform(counts)
        return sp.csr_matrix(x, dtype=np.float64), np.asarray(weighting.idf_, dtype=np.float64)

    def _features(self, texts: list[str], fit: bool) -> sp.csr_matrix:
        assert self._word is not None
        words, chars = prepare_texts_parallel(texts, self.segment_words, bar=fit)
        if fit:
            try:
                word_counts = self._word.fit_transform(words)
            except ValueError:  # empty vocabulary: every text is blank or punctuation
                raise EncoderError(
                    "tfidf encoder: the catalogue texts contain no words to learn from."
                ) from None
        else:
            word_counts = self._word.transform(words)
        word_block, self._word_idf = self._weighted(word_counts, None if fit else self._word_idf)
        blocks = [word_block]
        if self._char is not None:
            if fit:
                try:
                    char_counts = self._char.fit_transform(chars)
                except ValueError:  # min_df removed every n-gram (tiny catalogue)
                    self._char = None
                    self._char_idf = np.zeros(0)
                    return sp.csr_matrix(blocks[0])
            else:
                char_counts = self._char.transform(chars)
            char_idf = None if fit else self._char_idf
            char_block, self._char_idf = self._weighted(char_counts, char_idf)
            blocks.append(char_block * self.char_weight)
        return sp.csr_matrix(sp.hstack(blocks, format="csr"))

    def features(self, texts: list[str]) -> sp.csr_matrix:
        """The fitted sparse TF-IDF rows of ``texts`` before the SVD ``(len, n_features)``: what
        ``scripts/content_baseline.py`` compares with the projected embeddings."""
        if not self._fitted or self._word is None:
            raise EncoderError("tfidf encoder: fit() before features().")
        return self._features(texts, fit=False)

    # -- interface -------------------------------------------------------------------------------
    def _fit(self, texts: list[str]) -> None:
        self._new_vectorizers()
        x = self._features(texts, fit=True)
        # encode() right after fit() on the same texts (the catalogue) reuses these features.
        self._fit_features = (texts, x)
        k = min(self.requested_dim, x.shape[0], x.shape[1] - 1)
        components = _top_components(x, k, self.seed) if k >= 2 else None
        if components is None or components.shape[0] < 2:
            # Too few products/features for a projection: keep the raw TF-IDF space.
            self._projection = None
            logger.warning("tfidf: catalogue too small for SVD; using %d raw features", x.shape[1])
            return
        self._projection = np.ascontiguousarray(components.T)
        logger.info(
            "tfidf: %d texts, %d features -> %d dims", x.shape[0], x.shape[1], len(components)
        )

    def _encode(self, texts: list[str]) -> np.ndarray:
        cached, self._fit_features = self._fit_features, None
        x = cached[1] if cached is not None and cached[0] == texts else self._features(texts, False)
        if self._projection is None:
            return x.toarray().astype(np.float32)
        return np.asarray(x.astype(np.float32) @ self._projection, dtype=np.float32)

    def _state(self, directory: Path) -> dict[str, Any]:
        assert self._word is not None
        # float16 halves the largest file (n_features x dim); cosines move by < 1e-3.
        projection = (
            np.zeros((0, 0), np.float16)
            if self._projection is None
            else self._projection.astype(np.float16)
        )
        arrays: dict[str, np.ndarray] = {
            "word_idf": self._word_idf,
            "char_idf": self._char_idf,
            "projection": projection,
        }
        for key, value in arrays.items():
            atomic_save_npy(directory / f"{key}.npy", value)
        return {
            "params": self.params(),
            "dim": self.dim,
            "word_vocabulary": self._word.get_feature_names_out().tolist(),
            "char_vocabulary": self._char.get_feature_names_out().tolist() if self._char else [],
        }

    @classmethod
    def _from_state(cls, directory: Path, state: dict[str, Any]) -> TfidfEncoder:
        try:
            params = dict(state["params"])
            params["word_ngrams"] = tuple(params["word_ngrams"])
            if params.get("char_ngrams"):
                params["char_ngrams"] = tuple(params["char_ngrams"])
            enc = cls(**params)
            arrays = {k: np.load(directory / f"{k}.npy", allow_pickle=False) for k in _ARRAYS}
            word_vocab = {t: i for i, t in enumerate(state["word_vocabulary"])}
            char_vocab = {t: i for i, t in enumerate(state["char_vocabulary"])} or None
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise ModelLoadError(
                f"tfidf encoder state in {directory} is incomplete or corrupt ({exc}). "
                "Re-run embed."
            ) from exc
        enc._new_vectorizers(word_vocab, char_vocab)
        if char_vocab is None:
            enc._char = None
        enc._word_idf = arrays["word_idf"]
        enc._char_idf = arrays["char_idf"]
        projection = arrays["projection"]
        enc._projection = projection.astype(np.float32) if projection.size else None
        if len(enc._word_idf) != len(word_vocab) or len(enc._char_idf) != len(char_vocab or {}):
            raise ModelLoadError(
                f"tfidf encoder state in {directory}: idf/vocabulary sizes differ."
            )
        if enc._projection is not None and enc._projection.shape[0] != enc._n_features:
            raise ModelLoadError(f"tfidf encoder state in {directory}: SVD shape mismatch.")
        return enc
