"""A plain TF-IDF content baseline and the item universe it is scored in: a reference row.

Why: the content row of the evaluation tables had been compared with a "plain TF-IDF baseline"
from an outside harness that scored 0.094 NDCG@10 on Hasaki. That harness ranks only the products
that occur in the interaction data; the project's protocol ranks the whole catalogue, where 514 of
Hasaki's 902 products were never reviewed, so they can never be a held-out item but a text
signal ranks them like any other. This module rebuilds the baseline (scikit-learn's
``TfidfVectorizer`` over the product texts, user profile = mean of the history's TF-IDF rows,
cosine, the protocol's split and exclusion) and lets one score any content variant in either
universe, so the two can be told apart (``scripts/content_baseline.py``).

Offline only: it builds sparse matrices per batch, which the request path never does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer

from recommender import vocabulary as V
from recommender.data.matrix import item_codes
from recommender.data.processed import ProcessedData
from recommender.evaluation.evaluator import Ranker
from recommender.evaluation.protocol import EvaluationSet, history_splits
from recommender.scoring.signals import history_entries, recency_weights
from recommender.text.product_text import FIELD_WEIGHTS, build_product_texts

# every text field once, in the served order: what a plain baseline concatenates
PLAIN_FIELDS: tuple[tuple[str, int], ...] = tuple((field, 1) for field, _ in FIELD_WEIGHTS)
UNIVERSE_CATALOGUE = "catalogue"  # every product (the project's protocol)
UNIVERSE_INTERACTED = "interacted"  # products with an interaction in the history splits
UNIVERSES = (UNIVERSE_CATALOGUE, UNIVERSE_INTERACTED)


def catalogue_products(data: ProcessedData) -> pd.DataFrame:
    """The products frame in canonical item order (row ``i`` is item ``i``)."""
    return data.products.set_index(V.PRODUCT_ID).loc[list(data.item_ids)].reset_index()


def plain_tfidf(
    texts: Sequence[str], sublinear_tf: bool = False, ngram_range: tuple[int, int] = (1, 1)
) -> sp.csr_matrix:
    """scikit-learn's TF-IDF of ``texts`` (default tokens, lower-cased, smoothed idf, L2 rows):
    ``(n, features)`` CSR, float64. A blank text gives a zero row."""
    vectorizer = TfidfVectorizer(sublinear_tf=sublinear_tf, ngram_range=ngram_range)
    return sp.csr_matrix(vectorizer.fit_transform(list(texts)), dtype=np.float64)


def plain_texts(
    products: pd.DataFrame, fields: Sequence[tuple[str, int]] = PLAIN_FIELDS
) -> list[str]:
    """The baseline's text per product: ``fields`` ((column, repetitions)) joined, unsegmented."""
    return build_product_texts(products, fields)


def profile_cosine(
    histories: Sequence[np.ndarray],
    rows: sp.csr_matrix | np.ndarray,
    weights: Sequence[np.ndarray] | None = None,
) -> np.ndarray:
    """``(b, n)`` cosine of every item's row to the (``weights``-weighted) mean of the L2-normalised
    rows of each history's distinct items; an empty history (or an all-zero profile) scores 0.

    The weighted mean and the weighted sum point the same way, so the cosine is that of the sum.
    """
    matrix = sp.csr_matrix(rows, dtype=np.float64)
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    scale = np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)
    unit = sp.csr_matrix(sp.diags(scale) @ matrix)
    b, n = len(histories), matrix.shape[0]
    users, items, w = history_entries(histories, weights)  # distinct items, largest weight
    picks = sp.csr_matrix((w, (users, items)), shape=(b, n))
    profiles = sp.csr_matrix(picks @ unit)
    lengths = np.sqrt(np.asarray(profiles.multiply(profiles).sum(axis=1)).ravel())
    scores = np.asarray((profiles @ unit.T).todense(), dtype=np.float64)
    has = lengths > 0
    scores[has] /= lengths[has, None]
    scores[~has] = 0.0
    return scores.astype(np.float32)


def interacted_items(data: ProcessedData, stage: str) -> np.ndarray:
    """``(n,)`` bool: items with at least one interaction (any rating) in ``stage``'s history
    splits: the item universe of a harness that knows only the products of its rating matrix."""
    frame = data.interactions
    history = frame.loc[frame[V.SPLIT].isin(list(history_splits(stage)))]
    out = np.zeros(len(data.item_ids), dtype=bool)
    out[item_codes(data, history)] = True
    return out


def content_ranker(
    rows: sp.csr_matrix | np.ndarray, recency_decay: float = 1.0, universe: np.ndarray | None = None
) -> Ranker:
    """A table row: :func:`profile_cosine` of each user's history (items weighted
    ``recency_decay ** age`` when < 1); with ``universe`` (``(n,)`` bool) items outside it rank
    below every item inside. None for the ``unknown`` segment (no history)."""

    def rank(batch: EvaluationSet, segment: str) -> np.ndarray | None:
        if segment == V.SEGMENT_UNKNOWN:
            return None
        weights = None if recency_decay == 1.0 else recency_weights(batch.histories, recency_decay)
        scores = profile_cosine(batch.histories, rows, weights)
        if universe is not None:
            scores[:, ~universe] = -2.0  # a cosine is >= -1
        return scores

    return rank
