"""The hybrid: Σ weight × normalised signal, with per-segment weights tuned on validation.

Each signal is normalised per user over the catalogue before weighting, so a weight means the same
thing whatever the raw score range of its model (the replaced system normalised CF scores on a fixed
range, which made the CF weight do nothing).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.errors import InvalidRequestError
from recommender.scoring.blend_kernel import add_term

NORMALISATIONS = ("minmax", "rank")
# Largest weight of one signal. Signals are normalised to [0, 1], so a weighted sum stays below
# 5 × MAX_WEIGHT: far from float32's limit even after rounding (× 1e6), where 1e33 overflowed to
# inf and emptied the answer. Only the ratios between weights change a ranking.
MAX_WEIGHT = 1000.0


def normalise(scores: np.ndarray, method: str = "minmax") -> np.ndarray:
    """Scale each row of ``scores`` ``(b, n)`` (or a vector ``(n,)``) to [0, 1].

    ``minmax``: ``(s − min) / (max − min)``; ``rank``: rank / (n − 1). A row with no spread (no
    signal for that user) becomes all zeros, so it adds nothing instead of adding a constant.
    """
    x = np.asarray(scores, dtype=np.float32)
    squeeze = x.ndim == 1
    if x.ndim < 2:
        x = np.atleast_2d(x)
    if method == "minmax":
        lo = x.min(axis=1, keepdims=True)
        span = x.max(axis=1, keepdims=True) - lo
        spread = span.item() > 0 if span.size == 1 else bool((span > 0).all())
        if spread:  # every row has a spread (the usual request): the same division, in place
            out = x - lo
            np.divide(out, span, out=out)
        else:
            out = np.divide(x - lo, span, out=np.zeros_like(x), where=span > 0)
    elif method == "rank":
        out = _tied_ranks(x) / np.float32(max(x.shape[1] - 1, 1))
    else:
        raise InvalidRequestError(
            f"unknown normalisation {method!r}; expected one of {', '.join(NORMALISATIONS)}"
        )
    return out[0] if squeeze else out


def _tied_ranks(x: np.ndarray) -> np.ndarray:
    """Per-row rank of each value, equal values sharing the lowest rank: one sort per row.

    Ties matter: most items have no item-similarity or content signal for a user, and ranking those
    zeros by item index would inject noise into the hybrid. All-equal rows get rank 0 everywhere.
    """
    b, n = x.shape
    order = np.argsort(x, axis=1)  # ties are grouped below, so sort stability does not matter
    ordered = np.take_along_axis(x, order, axis=1)
    starts = np.ones((b, n), dtype=bool)
    starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    positions = np.where(starts, np.arange(n, dtype=np.float32), np.float32(0))
    group_rank = np.maximum.accumulate(positions, axis=1)
    ranks = np.empty((b, n), dtype=np.float32)
    np.put_along_axis(ranks, order, group_rank, axis=1)
    return ranks


def validate_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Check per-request or configured weights: known signals, finite, in 0..MAX_WEIGHT, not all
    zero."""
    if not isinstance(weights, Mapping) or not weights:
        raise InvalidRequestError(
            f"rerank_weights must be a non-empty object mapping signals ({', '.join(V.SIGNALS)}) "
            "to non-negative numbers"
        )
    clean: dict[str, float] = {}
    for key, value in weights.items():
        if key not in V.SIGNALS:
            raise InvalidRequestError(
                f"rerank_weights: unknown signal {key!r}; known signals are {', '.join(V.SIGNALS)}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequestError(f"rerank_weights.{key}: expected a number, got {value!r}")
        if not math.isfinite(value) or not 0 <= value <= MAX_WEIGHT:
            raise InvalidRequestError(
                f"rerank_weights.{key}: must be a number between 0 and {MAX_WEIGHT:g} "
                f"(only the ratios between weights matter), got {value!r}"
            )
        clean[key] = float(value)
    if not any(v > 0 for v in clean.values()):
        raise InvalidRequestError("rerank_weights: at least one weight must be greater than 0")
    return clean


def combine(
    signals: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    method: str = "minmax",
    prenormalised: Collection[str] = (),
) -> np.ndarray:
    """``Σ weights[s] × normalise(signals[s])`` -> ``(b, n)`` float32; zero weights are skipped.

    Signals may be per-user ``(b, n)`` or static ``(n,)`` (broadcast). A weighted signal that is
    absent is skipped (e.g. content without embeddings). Names in ``prenormalised`` are already
    normalised with ``method`` (static signals, normalised once per model).
    """
    total: np.ndarray | None = None
    for name, weight in weights.items():
        if weight <= 0 or name not in signals:
            continue
        fresh = name not in prenormalised  # normalise() returned a new array: scaled in place
        values = normalise(signals[name], method) if fresh else signals[name]
        term = np.multiply(values, np.float32(weight), out=values if fresh else None)
        if total is None:
            total = term
        elif total.shape == term.shape:  # both new arrays of this call: summed in place
            np.add(total, term, out=total)
        else:
            total = total + term
    if total is None:
        first = next(iter(signals.values()))
        return np.zeros(np.atleast_2d(first).shape, dtype=np.float32)
    return np.atleast_2d(total).astype(np.float32, copy=False)


def combine_row(
    signals: Mapping[str, np.ndarray],
    weights: Mapping[str, float],
    static: Mapping[str, np.ndarray],
) -> np.ndarray:
    """:func:`combine` with ``minmax`` for ONE user, as a new ``(n,)`` float32 vector.

    ``signals`` are the user's ``(1, n)`` rows or static ``(n,)`` vectors; ``static`` the
    model's min-max normalised static signals, used for a static signal as :func:`combine`'s
    ``prenormalised``. One compiled pass per signal (:mod:`.blend_kernel`) with the float32
    operations of :func:`combine` on a batch of one, in the same order: a request's blend
    without a dozen numpy calls and their temporaries.
    """
    total: np.ndarray | None = None
    for name, weight in weights.items():
        values = signals.get(name)
        if weight <= 0 or values is None:
            continue
        normalised = static.get(name) if values.ndim == 1 else None
        source = values if normalised is None else normalised
        source = np.asarray(source, dtype=np.float32).reshape(-1)  # as normalise() casts
        first = total is None
        if total is None:
            total = np.empty(source.shape[0], dtype=np.float32)
        add_term(total, source, np.float32(weight), normalised is None, first)
    if total is None:
        first_signal = next(iter(signals.values()))
        return np.zeros(first_signal.shape[-1], dtype=np.float32)
    return total


def _default_weights() -> dict[str, dict[str, float]]:
    return {
        V.SEGMENT_TRAINABLE: {V.SIGNAL_CF: 1.0},
        V.SEGMENT_COLD: {
            V.SIGNAL_CF: 0.5,
            V.SIGNAL_ITEM_SIMILARITY: 0.3,
            V.SIGNAL_CONTENT: 0.1,
            V.SIGNAL_POPULARITY: 0.1,
        },
        V.SEGMENT_UNKNOWN: {V.SIGNAL_POPULARITY: 0.8, V.SIGNAL_QUALITY: 0.2},
    }


@dataclass(frozen=True)
class HybridConfig:
    """Per-segment signal weights, the normalisation they were tuned with, and the recency decay
    of history items (``decay ** age``, newest = 1; 1 = no decay, the value of older models).

    The *stale gate* (``stale_after_hours`` set): a user whose newest positive is more than that
    many hours before the request is scored with popularity of half-life
    ``stale_popularity_half_life_days`` (None: all-time counts) instead of the model's. Why: on
    the Hasaki reviews the next item of a returning user follows a slower trend than a same-day
    basket item (validation: 14 days against 3.5); the weights are the same for both.
    ``stale_after_hours`` None = no gate (older models)."""

    weights: dict[str, dict[str, float]] = field(default_factory=_default_weights)
    normalisation: str = "minmax"
    recency_decay: float = 1.0
    stale_after_hours: float | None = None
    stale_popularity_half_life_days: float | None = None

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise InvalidRequestError(
                f"hybrid normalisation {self.normalisation!r} is not one of {NORMALISATIONS}"
            )
        if not 0.0 < self.recency_decay <= 1.0:
            raise InvalidRequestError(
                f"hybrid recency_decay must be in (0, 1], got {self.recency_decay!r}"
            )
        for segment, weights in self.weights.items():
            if segment not in V.SEGMENTS:
                raise InvalidRequestError(
                    f"hybrid weights: unknown segment {segment!r}; expected {V.SEGMENTS}"
                )
            validate_weights(weights)
        if self.stale_after_hours is not None and not self.stale_after_hours > 0:
            raise InvalidRequestError(
                f"hybrid stale_after_hours must be > 0 or null, got {self.stale_after_hours!r}"
            )
        half_life = self.stale_popularity_half_life_days
        if half_life is not None and not half_life > 0:
            raise InvalidRequestError(
                f"hybrid stale_popularity_half_life_days must be > 0 or null, got {half_life!r}"
            )

    @property
    def stale_seconds(self) -> float | None:
        """The stale gate in seconds since the user's newest positive (None: no gate)."""
        return None if self.stale_after_hours is None else self.stale_after_hours * 3600.0

    def for_segment(self, segment: str) -> dict[str, float]:
        """The weights of ``segment``, falling back to the defaults for a segment not stored."""
        return dict(self.weights.get(segment) or _default_weights()[segment])

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "normalisation": self.normalisation,
            "recency_decay": self.recency_decay,
            "stale_after_hours": self.stale_after_hours,
            "stale_popularity_half_life_days": self.stale_popularity_half_life_days,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> HybridConfig:
        if not data:
            return cls()
        return cls(
            weights={s: dict(w) for s, w in data.get("weights", {}).items()} or _default_weights(),
            normalisation=str(data.get("normalisation", "minmax")),
            recency_decay=float(data.get("recency_decay", 1.0)),
            stale_after_hours=_optional_float(data.get("stale_after_hours")),
            stale_popularity_half_life_days=_optional_float(
                data.get("stale_popularity_half_life_days")
            ),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)
