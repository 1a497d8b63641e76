"""The one scoring function shared by evaluation and serving.

Evaluation tunes and reports exactly what the engine serves because both call :func:`score_users`
on a :class:`ScoringModel`.
"""

from __future__ import annotations

import dataclasses
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.errors import InvalidRequestError
from recommender.scoring.candidates import (
    CandidateSearch,
    CandidateSearchFailed,
    candidate_breakdown,
    candidate_scores,
)
from recommender.scoring.ease import ease_scores
from recommender.scoring.hybrid import NORMALISATIONS, combine, combine_row, normalise
from recommender.scoring.popularity import PopularityHistory
from recommender.scoring.signals import (
    Entries,
    cf_scores,
    content_scores,
    fold_in,
    fold_in_inverse,
    history_entries,
    item_gram,
    item_similarity_scores,
    recency_weights,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refold:
    """How a *trainable* user's CF vector is refolded from new evidence (live positives, context
    items): the ALS user step the stored rows were fit with, ``λ`` = ALS's regularisation and
    confidences ``1 + alpha · r`` (``r`` the recency weights, 1 without decay), the newest item's
    ``r`` times ``newest_boost`` (chosen on the build's live validation). The cold fold-in's ``λ``
    is tuned on one-item histories with unit confidences; for a user whose stored row came from
    this step, that vector scored 0.045 NDCG@10 below the row on the Hasaki validation context
    check, the ALS step with ``newest_boost`` 2 +0.007 (scripts/evaluate_context.py)."""

    regularization: float
    alpha: float
    newest_boost: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any] | None) -> Refold | None:
        """The ``refold`` entry of a model's metadata (None: refold as a cold user)."""
        if not raw:
            return None
        return cls(float(raw["regularization"]), float(raw["alpha"]), float(raw["newest_boost"]))

    def confidences(
        self, histories: Sequence[np.ndarray], recency: Sequence[np.ndarray] | None
    ) -> list[np.ndarray]:
        """Per history item ``1 + alpha · r``, the newest item's ``r`` times ``newest_boost``."""
        out = []
        for position, history in enumerate(histories):
            r = (
                np.ones(len(history), dtype=np.float64)
                if recency is None
                else np.array(recency[position], dtype=np.float64)
            )
            if r.size:
                r[-1] *= self.newest_boost
            out.append(1.0 + self.alpha * r)
        return out


_TRANSPOSED: dict[int, tuple[weakref.ref[np.ndarray], np.ndarray]] = {}


def _transposed(matrix: np.ndarray) -> np.ndarray:
    """C-contiguous ``matrix.T``, one copy per live array object. The models derived from one
    model by ``dataclasses.replace`` (candidate stage, exact, refold, stale popularity) hold the
    same item factors: each computing its own copy cost 36 MB a model at 50K products × 188
    factors, in every worker. Threads racing on a first use may both compute it (same values)."""
    key = id(matrix)
    entry = _TRANSPOSED.get(key)
    if entry is not None and entry[0]() is matrix:
        return entry[1]
    out = np.ascontiguousarray(matrix.T)

    def forget(ref: weakref.ref[np.ndarray]) -> None:  # the array is gone: so is its copy
        if _TRANSPOSED.get(key, (None,))[0] is ref:
            del _TRANSPOSED[key]

    _TRANSPOSED[key] = (weakref.ref(matrix, forget), out)
    return out


@dataclass(frozen=True)
class ScoringModel:
    """Arrays that score any user over the catalogue of ``n`` items.

    item_factors ``(n, d)`` and user_factors ``(m, d)`` float32 (CF rows of trainable users);
    gram ``(d, d)`` = VᵀV for fold-in; item_similarity ``(n, n)`` CSR; embeddings ``(n, e)``
    L2-normalised or None; popularity and quality ``(n,)`` in [0, 1]. ``popularity_history``
    (evaluation only) gives popularity as of each user's request time instead of the static
    vector, which is the popularity "now" that serving uses. ``fold_in_inverse`` ``(d, d)`` is
    ``(VᵀV + λI)⁻¹`` (the unit-confidence fold-in's matrix, inverted once); ``item_cosine``
    ``(n, n)`` the embedding cosine when the caller precomputed it (serving, small catalogues):
    content scores then gather its rows instead of multiplying a profile with every embedding.
    ``item_item`` ``(n, n)``: EASE's
    ``B`` (the factors then have 0 columns); when set, the CF signal of every user with a history
    is ``x_u B`` (:func:`~recommender.scoring.ease.ease_scores`) instead of factors / fold-in.
    ``refold``: how a trainable user's CF vector is refolded (:class:`Refold`, ALS models;
    None: as a cold user); :attr:`refold_model` scores such users. ``fold_in_confidence``: the
    fold-in confidences of this model (set on :attr:`refold_model`; None: the recency weights).
    """

    item_factors: np.ndarray
    user_factors: np.ndarray
    fold_in_regularization: float
    gram: np.ndarray
    item_similarity: sp.csr_matrix
    embeddings: np.ndarray | None
    popularity: np.ndarray
    quality: np.ndarray
    static_normalised: dict[str, dict[str, np.ndarray]]  # method -> signal -> (n,) normalised
    popularity_history: PopularityHistory | None = None
    fold_in_inverse: np.ndarray | None = None
    item_cosine: np.ndarray | None = None
    item_item: np.ndarray | None = None
    refold: Refold | None = None
    fold_in_confidence: Refold | None = None
    candidates: CandidateSearch | None = None

    @property
    def n_items(self) -> int:
        return int(self.popularity.shape[0])

    @cached_property
    def item_factors_t(self) -> np.ndarray:
        """``(d, n)`` C-contiguous item factors: BLAS multiplies a few user rows by it ~7x
        faster than by the transposed view (15 vs 106 us for 2 x 64 x 2,000), bit for bit the
        same products. Computed once per item-factor array (:func:`_transposed`): the models
        derived from this one share it (and a live model with new products has its own)."""
        return _transposed(self.item_factors)

    @cached_property
    def exact_model(self) -> ScoringModel:
        """This model without its candidate stage (scored over the whole catalogue)."""
        return self if self.candidates is None else dataclasses.replace(self, candidates=None)

    @cached_property
    def popularity_order(self) -> np.ndarray:
        """Item indices by popularity (desc, index asc): the candidate stage's popular source."""
        return np.lexsort((np.arange(self.n_items), -self.popularity))

    @cached_property
    def refold_model(self) -> ScoringModel:
        """The model a trainable user with new evidence is scored on as ``cold`` (their CF vector
        folded in from the whole history): with :attr:`refold`, the ALS user step; else this
        model (the cold fold-in). Computed once per model (and per live model)."""
        if self.refold is None:
            return self
        return dataclasses.replace(
            self,
            fold_in_regularization=self.refold.regularization,
            fold_in_inverse=None,
            fold_in_confidence=self.refold,
            refold=None,
        )

    @classmethod
    def build(
        cls,
        item_factors: np.ndarray,
        user_factors: np.ndarray,
        fold_in_regularization: float,
        item_similarity: sp.csr_matrix,
        embeddings: np.ndarray | None,
        popularity: np.ndarray,
        quality: np.ndarray,
        popularity_history: PopularityHistory | None = None,
        item_cosine: np.ndarray | None = None,
        item_item: np.ndarray | None = None,
        refold: Refold | None = None,
    ) -> ScoringModel:
        """Check shapes once and make every array float32 and contiguous."""
        n = len(popularity)
        item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        checks = {
            "item_factors rows": item_factors.shape[0],
            "item_similarity": item_similarity.shape[0],
            "quality": len(quality),
        }
        if embeddings is not None:
            checks["embeddings rows"] = embeddings.shape[0]
        if item_cosine is not None:
            checks["item_cosine rows"] = item_cosine.shape[0]
        if item_item is not None:
            checks["item_item rows"] = item_item.shape[0]
            checks["item_item columns"] = item_item.shape[1]
        wrong = {k: v for k, v in checks.items() if v != n}
        if wrong:
            raise ValueError(f"ScoringModel: sizes {wrong} differ from the {n} catalogue items")
        if user_factors.size and user_factors.shape[1] != item_factors.shape[1]:
            raise ValueError(
                f"ScoringModel: user factors {user_factors.shape} and item factors "
                f"{item_factors.shape} disagree on the factor count"
            )
        gram = item_gram(item_factors)
        return cls(
            item_factors=item_factors,
            user_factors=user_factors,
            fold_in_regularization=float(fold_in_regularization),
            gram=gram,
            item_similarity=sp.csr_matrix(item_similarity, dtype=np.float32),
            embeddings=None
            if embeddings is None
            else np.ascontiguousarray(embeddings, dtype=np.float32),
            popularity=np.ascontiguousarray(popularity, dtype=np.float32),
            quality=np.ascontiguousarray(quality, dtype=np.float32),
            static_normalised={
                method: {
                    V.SIGNAL_POPULARITY: normalise(popularity, method),
                    V.SIGNAL_QUALITY: normalise(quality, method),
                }
                for method in NORMALISATIONS
            },
            popularity_history=popularity_history,
            fold_in_inverse=fold_in_inverse(gram, float(fold_in_regularization)),
            item_cosine=item_cosine,
            item_item=None if item_item is None else np.asarray(item_item, dtype=np.float32),
            refold=refold,
        )


def with_popularity(
    model: ScoringModel, popularity: np.ndarray, history: PopularityHistory | None = None
) -> ScoringModel:
    """``model`` with another popularity vector ``(n,)`` (and history, evaluation only): the
    stale gate's model (:class:`~recommender.scoring.hybrid.HybridConfig`); the other arrays are
    shared, the static normalisations recomputed."""
    popularity = np.ascontiguousarray(popularity, dtype=np.float32)
    if popularity.shape != model.popularity.shape:
        raise ValueError(
            f"with_popularity: {popularity.shape} popularity for {model.n_items} catalogue items"
        )
    static = {
        method: {**signals, V.SIGNAL_POPULARITY: normalise(popularity, method)}
        for method, signals in model.static_normalised.items()
    }
    return dataclasses.replace(
        model, popularity=popularity, popularity_history=history, static_normalised=static
    )


def with_candidates(model: ScoringModel, search: CandidateSearch | None) -> ScoringModel:
    """``model`` scored through the candidate stage of ``search`` (None: exactly, over the
    whole catalogue); ``ValueError`` when an index does not fit the model."""
    if search is not None:
        embedding_dim = None if model.embeddings is None else int(model.embeddings.shape[1])
        search.check(model.n_items, embedding_dim, int(model.item_factors.shape[1]))
    return dataclasses.replace(model, candidates=search)


def with_fold_in_regularization(model: ScoringModel, regularization: float) -> ScoringModel:
    """``model`` with another fold-in λ, its precomputed ``(VᵀV + λI)⁻¹`` recomputed with it: a
    ``dataclasses.replace`` of the λ alone would leave the inverse of the old λ, which unit-
    confidence fold-ins (no recency decay) use."""
    regularization = float(regularization)
    return dataclasses.replace(
        model,
        fold_in_regularization=regularization,
        fold_in_inverse=fold_in_inverse(model.gram, regularization),
    )


def cf_vectors(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    user_rows: np.ndarray | None,
    recency: Sequence[np.ndarray] | None,
    entries: Entries | None,
) -> np.ndarray:
    """``(b, d)`` CF user vectors: the stored rows of trainable users, else the fold-in of the
    history on the item factors (a trainable user's refold: the ALS step, :attr:`refold_model`)."""
    if segment == V.SEGMENT_TRAINABLE:
        if user_rows is None:
            raise ValueError("user_rows is required for the trainable segment")
        return model.user_factors[np.asarray(user_rows)]
    confidences = recency
    if model.fold_in_confidence is not None:  # a trainable user's refold: the ALS step
        confidences = model.fold_in_confidence.confidences(histories, recency)
    return fold_in(
        histories,
        model.item_factors,
        model.fold_in_regularization,
        confidences=confidences,
        gram=model.gram,
        inverse=None if confidences is not None else model.fold_in_inverse,
        entries=entries,
    )


def compute_signals(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    wanted: Sequence[str] = V.SIGNALS,
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Raw signals (``(b, n)`` or static ``(n,)``) of ``wanted`` for a batch of one segment.

    trainable: cf = U[user_rows]·Vᵀ (``user_rows`` required); cold: cf = fold-in of the history on
    the item factors; unknown: no history signals at all. ``recency_decay < 1`` weighs history
    item ``k`` from the newest by ``decay ** k`` in item-similarity, content and the fold-in
    confidences (histories must be ordered oldest → newest); 1 weighs every item equally.
    ``request_times`` ``(b,)`` Unix seconds: popularity as of each user's request, ``(b, n)``, when
    the model has a :class:`PopularityHistory` (evaluation); otherwise the static vector.
    """
    if segment not in V.SEGMENTS:
        raise InvalidRequestError(f"unknown segment {segment!r}; expected one of {V.SEGMENTS}")
    out: dict[str, np.ndarray] = {}
    has_history = segment != V.SEGMENT_UNKNOWN
    recency = None if recency_decay == 1.0 else recency_weights(histories, recency_decay)
    entries = history_entries(histories, recency) if has_history else None  # shared below
    if V.SIGNAL_CF in wanted and has_history and model.item_item is not None:
        out[V.SIGNAL_CF] = ease_scores(histories, model.item_item, recency, model.n_items)
    elif V.SIGNAL_CF in wanted and has_history:
        vectors = cf_vectors(model, segment, histories, user_rows, recency, entries)
        out[V.SIGNAL_CF] = cf_scores(vectors, model.item_factors, model.item_factors_t)
    if V.SIGNAL_ITEM_SIMILARITY in wanted and has_history:
        out[V.SIGNAL_ITEM_SIMILARITY] = item_similarity_scores(
            histories, model.item_similarity, recency, entries
        )
    if V.SIGNAL_CONTENT in wanted and has_history and model.embeddings is not None:
        out[V.SIGNAL_CONTENT] = content_scores(
            histories, model.embeddings, recency, model.item_cosine, entries
        )
    if V.SIGNAL_POPULARITY in wanted:
        history = model.popularity_history
        if request_times is not None and history is not None:
            out[V.SIGNAL_POPULARITY] = history.at(request_times)
        else:
            out[V.SIGNAL_POPULARITY] = model.popularity
    if V.SIGNAL_QUALITY in wanted:
        out[V.SIGNAL_QUALITY] = model.quality
    return out


def score_users(
    model: ScoringModel,
    segment: str,
    histories: Sequence[np.ndarray],
    weights: Mapping[str, float],
    method: str = "minmax",
    user_rows: np.ndarray | None = None,
    recency_decay: float = 1.0,
    request_times: np.ndarray | None = None,
) -> np.ndarray:
    """Hybrid scores ``(b, n)`` float32 for a batch of users of one segment.

    ``recency_decay`` is the model's tuned :attr:`HybridConfig.recency_decay` (see
    :func:`compute_signals`); the default 1 weighs every history item equally. ``request_times``:
    see :func:`compute_signals` (evaluation passes the held-out interaction's time).

    Seen items are not masked here: evaluation excludes train items, the engine excludes the
    user's history and applies filters. With ``model.candidates`` (the ANN candidate stage) users
    with a history are scored over their candidates only, ``-inf`` elsewhere
    (:func:`~recommender.scoring.candidates.candidate_scores`).
    """
    if model.candidates is not None and segment != V.SEGMENT_UNKNOWN:
        try:
            return candidate_scores(
                model, segment, histories, weights, method, user_rows, recency_decay, request_times
            )
        except CandidateSearchFailed as exc:  # never fail a request for the optimisation
            logger.warning("ANN candidate search failed (%s): scoring exactly", exc)
            model = model.exact_model
    wanted = [name for name, w in weights.items() if w > 0]
    signals = compute_signals(
        model, segment, histories, wanted, user_rows, recency_decay, request_times
    )
    static = {
        name: values
        for name, values in model.static_normalised.get(method, {}).items()
        if name in signals and signals[name].ndim == 1
    }
    signals.update(static)
    scores = combine(signals, weights, method, prenormalised=static.keys())
    if scores.shape[0] != len(histories):  # only static signals: broadcast to the batch
        scores = np.broadcast_to(scores, (len(histories), model.n_items)).copy()
    return scores


def score_user(
    model: ScoringModel,
    segment: str,
    history: np.ndarray,
    weights: Mapping[str, float],
    method: str = "minmax",
    user_row: int | None = None,
    recency_decay: float = 1.0,
) -> np.ndarray:
    """:func:`score_users` of ONE user as a new writable ``(n,)`` float32 vector (a request).

    The same signals (:func:`compute_signals` on a batch of one) blended by
    :func:`~recommender.scoring.hybrid.combine_row`: the float32 arithmetic of
    :func:`combine`, bit for bit, on 1-D arrays. The candidate stage and ``rank`` normalisation
    go through :func:`score_users` itself.
    """
    rows = None if user_row is None else np.array([user_row], dtype=np.int64)
    if method != "minmax" or (model.candidates is not None and segment != V.SEGMENT_UNKNOWN):
        return score_users(model, segment, [history], weights, method, rows, recency_decay)[0]
    wanted = [name for name, w in weights.items() if w > 0]
    signals = compute_signals(model, segment, [history], wanted, rows, recency_decay)
    return combine_row(signals, weights, model.static_normalised.get(method, {}))


def signal_breakdown(
    model: ScoringModel,
    segment: str,
    history: np.ndarray,
    method: str = "minmax",
    user_row: int | None = None,
    recency_decay: float = 1.0,
    weights: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """Every available signal for ONE user, normalised as the hybrid sees it: signal -> ``(n,)``.

    With ``model.candidates`` and the request's ``weights`` (which decide the candidate union)
    the signals are normalised over that union, as :func:`score_users` blends them
    (:func:`~recommender.scoring.candidates.candidate_breakdown`); otherwise over the catalogue.
    """
    if model.candidates is not None and segment != V.SEGMENT_UNKNOWN and weights is not None:
        try:
            return candidate_breakdown(
                model, segment, history, weights, method, user_row, recency_decay
            )
        except CandidateSearchFailed as exc:  # as score_users: never fail for the optimisation
            logger.warning("ANN candidate search failed (%s): exact breakdown", exc)
            model = model.exact_model
    rows = None if user_row is None else np.array([user_row])
    raw = compute_signals(model, segment, [history], V.SIGNALS, rows, recency_decay)
    return {name: np.atleast_2d(normalise(values, method))[0] for name, values in raw.items()}
