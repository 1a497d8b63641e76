"""The non-CF signals of one stage, built only from that stage's history splits (no leakage).

Item-kNN and popularity are fit on the positive interactions of *every* known user in the history
splits (users without a CF row still count as co-occurrence and popularity evidence); quality is
the smoothed mean rating of those interactions; content comes from the product embeddings, aligned
to the canonical item order.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.training import ItemKNNParams, PopularityParams
from recommender.data.matrix import all_users_matrix, item_codes, positive_rows
from recommender.data.processed import ProcessedData, unix_seconds
from recommender.errors import InvalidDataError
from recommender.evaluation.protocol import history_splits, popularity_splits
from recommender.scoring import (
    PopularityHistory,
    ScoringModel,
    fit_item_knn,
    quality_scores,
    session_items,
    with_popularity,
)
from recommender.scoring.factors import FactorModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SideSignals:
    """Catalogue-wide signals of a stage: ``(n, n)`` CSR and ``(n,)`` / ``(n, e)`` arrays."""

    item_similarity: sp.csr_matrix
    popularity: np.ndarray  # as of the end of the stage's history
    popularity_history: PopularityHistory  # as of any request time (what evaluation uses)
    quality: np.ndarray
    embeddings: np.ndarray | None


@dataclass(frozen=True)
class AlignedEmbeddings:
    """Product embeddings in canonical item order, with their version."""

    vectors: np.ndarray  # (n, e) float32, unit rows
    version: str


def load_aligned_embeddings(data: ProcessedData) -> AlignedEmbeddings | None:
    """The embeddings written by ``embed`` in ``data.directory``, reordered to ``data.item_ids``.

    Returns None (content signal off) when no embeddings were built; raises InvalidDataError when
    they do not cover the catalogue (stale embeddings from another prepare run).
    """
    from recommender.embeddings import embeddings_path, load_embeddings

    path = embeddings_path(data.directory)
    if not path.is_file():
        log.warning("no product embeddings at %s: the content signal is off", path)
        return None
    loaded = load_embeddings(path)
    index = loaded.index()
    missing = [pid for pid in data.item_ids if pid not in index]
    if missing:
        raise InvalidDataError(
            f"{path} lacks {len(missing)} catalogue products (e.g. {missing[:3]}); it was built "
            "from another prepare run. Re-run `python -m recommender embed`."
        )
    rows = np.fromiter((index[pid] for pid in data.item_ids), dtype=np.int64)
    version = str(loaded.metadata.get("embedding_version", ""))
    return AlignedEmbeddings(np.ascontiguousarray(loaded.embeddings[rows]), version)


def stage_quality(data: ProcessedData, splits: tuple[str, ...]) -> np.ndarray:
    """Bayesian-smoothed mean rating per item from the interactions of ``splits`` only.

    The catalogue's own ``num_ratings`` / ``avg_rating`` may count reviews written after the
    held-out interaction (Hasaki's counts cover the whole crawl), which would leak the test
    item's popularity into the quality signal; evaluation therefore recomputes both from the
    stage's history.
    """
    frame = data.interactions
    frame = frame.loc[frame[V.SPLIT].isin(list(splits))]
    codes = item_codes(data, frame)
    n = len(data.item_ids)
    ratings = pd.to_numeric(frame[V.RATING], errors="coerce").to_numpy(dtype=np.float64)
    valid = np.isfinite(ratings)
    counts = np.bincount(codes[valid], minlength=n).astype(np.float64)
    sums = np.bincount(codes[valid], weights=ratings[valid], minlength=n)
    means = np.divide(sums, counts, out=np.full(n, np.nan), where=counts > 0)
    return quality_scores(means, counts)


def stage_item_similarity(
    data: ProcessedData, splits: tuple[str, ...], matrix: sp.csr_matrix, params: ItemKNNParams
) -> sp.csr_matrix:
    """Item-kNN of ``matrix`` (= ``all_users_matrix(data, splits)``) with ``params``.

    With ``session_weight > 0`` the sessions come from the positive interactions of ``splits``
    only, cut by ``session_gap_hours``: the same fit serving runs on the full history.
    """
    sessions = None
    if params.session_weight > 0:
        frame = positive_rows(data, splits)
        users = pd.Index(list(data.user_ids), dtype=object).get_indexer(
            frame[V.USER_ID].astype(str).to_numpy(dtype=object)
        )
        sessions = session_items(
            users,
            item_codes(data, frame),
            unix_seconds(frame),
            matrix.shape[1],
            params.session_gap_hours * 3600.0,
        )
    return fit_item_knn(
        matrix, params.neighbours, params.shrinkage, sessions, params.session_weight
    )


def stage_popularity(
    data: ProcessedData, splits: tuple[str, ...], params: PopularityParams
) -> PopularityHistory:
    """The positive interactions of ``splits`` (every known user) as a popularity history."""
    frame = positive_rows(data, splits)
    return PopularityHistory.from_events(
        item_codes(data, frame), unix_seconds(frame), len(data.item_ids), params.half_life_days
    )


def stage_signals(
    data: ProcessedData,
    stage: str,
    item_knn: ItemKNNParams,
    embeddings: AlignedEmbeddings | None,
    popularity: PopularityParams | None = None,
) -> SideSignals:
    """Item-kNN, popularity, quality and content of ``stage`` (history splits only)."""
    matrix = all_users_matrix(data, history_splits(stage))
    params = popularity or PopularityParams()
    static = stage_popularity(data, history_splits(stage), params)
    return SideSignals(
        item_similarity=stage_item_similarity(data, history_splits(stage), matrix, item_knn),
        popularity=static.latest(),  # the history splits' (no target row) where no time is given
        # as of each request: every positive before it, other users' targets included
        popularity_history=stage_popularity(data, popularity_splits(stage), params),
        quality=stage_quality(data, history_splits(stage)),
        embeddings=None if embeddings is None else embeddings.vectors,
    )


def scoring_model(
    factors: FactorModel | None, side: SideSignals, fold_in_regularization: float | None = None
) -> ScoringModel:
    """A :class:`ScoringModel` of ``factors`` (None: a 1-factor zero model for baselines)."""
    n = side.popularity.shape[0]
    if factors is None:
        item_factors, user_factors, reg = np.zeros((n, 1)), np.zeros((0, 1)), 1.0
    else:
        item_factors, user_factors = factors.item_factors, factors.user_factors
        reg = factors.fold_in_regularization
    return ScoringModel.build(
        item_factors=item_factors,
        user_factors=user_factors,
        fold_in_regularization=reg if fold_in_regularization is None else fold_in_regularization,
        item_similarity=side.item_similarity,
        embeddings=side.embeddings,
        popularity=side.popularity,
        quality=side.quality,
        popularity_history=side.popularity_history,
        item_item=None if factors is None else factors.item_item,
    )


def stale_model(
    model: ScoringModel, data: ProcessedData, stage: str, half_life_days: float | None
) -> ScoringModel:
    """``model`` with popularity of ``half_life_days`` from ``stage``'s history splits of
    ``data`` (as of each request in evaluation): the stale gate's model (see
    :class:`~recommender.scoring.HybridConfig`)."""
    params = PopularityParams(half_life_days=half_life_days)
    static = stage_popularity(data, history_splits(stage), params)
    return with_popularity(
        model, static.latest(), stage_popularity(data, popularity_splits(stage), params)
    )
