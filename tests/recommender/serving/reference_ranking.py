"""The ranking as the engine computed it before the fast path (issue 12), kept as a reference.

A frozen copy of the scipy/loop implementation: per request a sparse history matrix times the
item-kNN matrix, per-user history sums, fold-in by one ``np.linalg.solve``, min-max / rank
normalisation of full-length rows, a full argsort of the ranking keys and the batched MMR. The
pinning tests compare the engine with it, so any change of ranking fails them: same ids, same
order, scores equal to 6 decimals. It scores one user at a time (padded to two rows, as the old
``UserScorer._compute`` did) and never touches the engine's caches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.scoring import ScoringModel
from recommender.serving import Engine
from recommender.serving.filters import eligibility_mask
from recommender.serving.live_state import trainable_fold_in
from recommender.serving.options import RecommendOptions
from recommender.serving.reranker import breakdown, segment_weights


# ---------------------------------------------------------------- signals (old signals.py)
def _f32(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32)


def _history_sums(
    histories: Sequence[np.ndarray], matrix: np.ndarray, weights: Sequence[np.ndarray] | None
) -> np.ndarray:
    out = np.zeros((len(histories), matrix.shape[1]), dtype=np.float64)
    for row, history in enumerate(histories):
        if len(history) == 0:
            continue
        items = np.asarray(history, dtype=np.int64)
        w = np.ones(len(items)) if weights is None else np.asarray(weights[row], dtype=np.float64)
        if len(items) > 1 and len(np.unique(items)) < len(items):
            order = np.lexsort((-w, items))
            items, w = items[order], w[order]
            first = np.ones(len(items), dtype=bool)
            first[1:] = items[1:] != items[:-1]
            items, w = items[first], w[first]
        out[row] = w @ matrix[items].astype(np.float64)
    return out


def _history_matrix(
    histories: Sequence[np.ndarray], n_items: int, weights: Sequence[np.ndarray] | None
) -> sp.csr_matrix:
    empty = np.zeros(0, dtype=np.int64)
    if weights is not None:
        rows = np.repeat(np.arange(len(histories)), [len(h) for h in histories])
        cols = np.concatenate([np.asarray(h, dtype=np.int64) for h in histories] or [empty])
        data = np.concatenate(
            [np.asarray(w, dtype=np.float64) for w in weights] or [empty.astype(np.float64)]
        )
        order = np.lexsort((-data, cols, rows))
        rows, cols, data = rows[order], cols[order], data[order]
        first = np.ones(len(rows), dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        return sp.csr_matrix(
            (data[first].astype(np.float32), (rows[first], cols[first])),
            shape=(len(histories), n_items),
        )
    lengths = np.array([len(h) for h in histories], dtype=np.int64)
    indptr = np.concatenate(([0], np.cumsum(lengths)))
    indices = (
        np.concatenate([np.asarray(h, dtype=np.int64) for h in histories]) if indptr[-1] else empty
    )
    data = np.ones(len(indices), dtype=np.float32)
    matrix = sp.csr_matrix((data, indices, indptr), shape=(len(histories), n_items))
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return matrix


def _fold_in(
    histories: Sequence[np.ndarray],
    model: ScoringModel,
    confidences: Sequence[np.ndarray] | None,
) -> np.ndarray:
    v = model.item_factors.astype(np.float64)
    base = v.T @ v + model.fold_in_regularization * np.eye(v.shape[1])
    if confidences is None:
        rhs = _history_sums(histories, model.item_factors, None)
        return _f32(np.linalg.solve(base, rhs.T).T)
    out = np.zeros((len(histories), v.shape[1]), dtype=np.float32)
    for row, items in enumerate(histories):
        if len(items) == 0:
            continue
        v_i = model.item_factors[np.asarray(items)].astype(np.float64)
        conf = np.asarray(confidences[row], dtype=np.float64)
        out[row] = np.linalg.solve(base + (v_i.T * (conf - 1.0)) @ v_i, v_i.T @ conf)
    return out


def _signals(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    wanted: Sequence[str],
    cf_rows: np.ndarray | None,
    decay: float,
) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    has_history = segment != V.SEGMENT_UNKNOWN
    recency = (
        None
        if decay == 1.0
        else [decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64) for h in histories]
    )
    if V.SIGNAL_CF in wanted and has_history:
        if segment == V.SEGMENT_TRAINABLE:
            vectors = model.user_factors[np.asarray(cf_rows)]
        else:
            vectors = _fold_in(histories, model, recency)
        out[V.SIGNAL_CF] = _f32(np.asarray(vectors, dtype=np.float32) @ model.item_factors.T)
    if V.SIGNAL_ITEM_SIMILARITY in wanted and has_history:
        h = _history_matrix(histories, model.item_similarity.shape[0], recency)
        out[V.SIGNAL_ITEM_SIMILARITY] = _f32((h @ model.item_similarity).toarray())
    if V.SIGNAL_CONTENT in wanted and has_history and model.embeddings is not None:
        profiles = _history_sums(histories, model.embeddings, recency).astype(np.float32)
        norms = np.linalg.norm(profiles, axis=1)
        has = norms > 0
        profiles[has] /= norms[has, None]
        out[V.SIGNAL_CONTENT] = _f32(profiles @ model.embeddings.T)
    if V.SIGNAL_POPULARITY in wanted:
        out[V.SIGNAL_POPULARITY] = model.popularity
    if V.SIGNAL_QUALITY in wanted:
        out[V.SIGNAL_QUALITY] = model.quality
    return out


# ---------------------------------------------------------------- hybrid (old hybrid.py)
def normalise(scores: np.ndarray, method: str) -> np.ndarray:
    x = np.atleast_2d(np.asarray(scores, dtype=np.float32))
    if method == "minmax":
        lo = x.min(axis=1, keepdims=True)
        span = x.max(axis=1, keepdims=True) - lo
        return np.divide(x - lo, span, out=np.zeros_like(x), where=span > 0)
    b, n = x.shape
    order = np.argsort(x, axis=1)
    ordered = np.take_along_axis(x, order, axis=1)
    starts = np.ones((b, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    positions = np.where(starts, np.arange(n, dtype=np.float32), np.float32(0))
    group_rank = np.maximum.accumulate(positions, axis=1)
    ranks = np.empty((b, n), dtype=np.float32)
    np.put_along_axis(ranks, order, group_rank, axis=1)
    return ranks / np.float32(max(n - 1, 1))


def score_user(
    model: ScoringModel,
    segment: str,
    history: np.ndarray,
    weights: Mapping[str, float],
    method: str,
    cf_row: int | None,
    decay: float,
) -> np.ndarray:
    """One user's rounded hybrid scores ``(n,)``, scored as two identical rows."""
    wanted = [name for name, w in weights.items() if w > 0]
    rows = None if cf_row is None else np.array([cf_row, cf_row])
    signals = _signals(model, segment, [history, history], wanted, rows, decay)
    total: np.ndarray | None = None
    for name, weight in weights.items():
        if weight <= 0 or name not in signals:
            continue
        term = np.float32(weight) * normalise(signals[name], method)
        total = term if total is None else total + term
    assert total is not None
    return np.round(total[0], V.SCORE_DECIMALS).astype(np.float32)


# ---------------------------------------------------------------- MMR (old reranker.mmr_order)
def mmr(relevance: np.ndarray, sims: np.ndarray | None, k: int, diversity: float) -> list[int]:
    c = len(relevance)
    k = min(k, c)
    valid = np.isfinite(relevance)
    if sims is None or diversity <= 0 or c <= 1:
        return [i for i in range(k) if valid[i]]
    lo = np.where(valid, relevance, np.inf).min()
    hi = np.where(valid, relevance, -np.inf).max()
    span = hi - lo if hi > lo else 1.0
    lam = np.float32(diversity)
    gain = np.where(valid, (1 - lam) * (relevance - lo) / span, -np.inf).astype(np.float32)
    penalty = np.zeros(c, dtype=np.float32)
    sims = lam * sims
    order: list[int] = []
    for _ in range(k):
        pick = int(np.argmax(gain - penalty))
        if gain[pick] == -np.inf:
            break
        order.append(pick)
        gain[pick] = -np.inf
        np.maximum(penalty, sims[pick], out=penalty)
    return order


# ---------------------------------------------------------------- one user's answer
def reference_answer(engine: Engine, user: str, options: RecommendOptions) -> dict[str, Any]:
    """``{"segment", "items": [(product_id, score)], "explain": [...] | None}`` as before."""
    bundle = engine.bundle
    hist = bundle.histories
    n = bundle.n_items
    live = engine.live
    entry = live.user(user) if live is not None else None
    model = bundle.model if live is None else engine._live_frame_model()[1]
    row = hist.index.get(user, -1)
    segment = hist.segment(row)
    if segment == V.SEGMENT_UNKNOWN and entry is not None and entry.liked.size:
        segment = V.SEGMENT_COLD
    weights, _ = segment_weights(bundle.hybrid, segment, options.weight_map)
    method, decay = bundle.hybrid.normalisation, bundle.hybrid.recency_decay
    stored = hist.liked(row) if row >= 0 else np.zeros(0, dtype=np.int64)
    history = stored
    if entry is not None and entry.liked.size:
        extra = entry.liked[~np.isin(entry.liked, stored)]
        history = np.concatenate([stored.astype(np.int64), extra])
    scored_as, cf_row = segment, None
    if segment == V.SEGMENT_TRAINABLE:
        refold = (
            entry is not None
            and entry.liked.size > 0
            and trainable_fold_in(engine.settings.events.trainable_fold_in, engine.bundle.info)
        )
        if refold:
            scored_as = V.SEGMENT_COLD
        else:
            cf_row = int(hist.cf_rows[row])
    scores = score_user(model, scored_as, history, weights, method, cf_row, decay)
    keys = np.arange(n, dtype=np.float64) * 1e-11 - scores.astype(np.float64)
    mask = eligibility_mask(
        bundle.catalogue, options.filters, price=None if live is None else live.price
    )
    if live is not None and live.has_catalogue_changes:
        mask = live.available if mask is None else mask & live.available
    if mask is not None:
        keys[~mask] = np.inf
    if options.exclude_seen:
        if row >= 0:
            keys[hist.items(row)] = np.inf
        if entry is not None and entry.seen.size:
            keys[entry.seen] = np.inf
    rerank = options.rerank
    multiplier = engine.settings.rerank.candidate_multiplier
    width = min(n, options.topk * multiplier if rerank else options.topk)
    candidates = np.argsort(keys, kind="stable")[:width]
    cand_scores = np.where(np.isfinite(keys[candidates]), scores[candidates], -np.inf)
    diversity = engine.settings.rerank.diversity if rerank else 0.0
    sims = None
    if diversity > 0 and model.embeddings is not None:
        if bundle.item_cosine is not None:
            sims = bundle.item_cosine[np.ix_(candidates, candidates)]
        else:
            vectors = model.embeddings[candidates][None]
            sims = (vectors @ vectors.transpose(0, 2, 1))[0]
    picks = mmr(cand_scores.astype(np.float32), sims, options.topk, diversity)
    records = bundle.catalogue.records if live is None else [live.record(i) for i in range(n)]
    chosen = [int(candidates[p]) for p in picks]
    rounded = np.round(scores[chosen].astype(np.float64), V.SCORE_DECIMALS).tolist()
    items = [(records[i][V.PRODUCT_ID], s) for i, s in zip(chosen, rounded, strict=True)]
    explain = None
    if options.explain and chosen:
        rows = None if segment != V.SEGMENT_TRAINABLE else np.array([int(hist.cf_rows[row])])
        raw = _signals(bundle.model, segment, [stored], V.SIGNALS, rows, decay)
        signals = {name: normalise(values, method)[0] for name, values in raw.items()}
        explain = [
            {"relevance": round(float(scores[i]), V.SCORE_DECIMALS), "signals": parts}
            for i, parts in zip(chosen, breakdown(signals, weights, np.array(chosen)), strict=True)
        ]
    return {"segment": segment, "items": items, "explain": explain}
