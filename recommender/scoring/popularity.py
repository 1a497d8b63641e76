"""Item-level static signals: popularity and quality, both scaled to [0, 1]."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def popularity_scores(user_items: sp.csr_matrix) -> np.ndarray:
    """``log1p(#users who interacted)`` per item, divided by its maximum -> ``(n,)`` float32.

    The log keeps the long tail distinguishable instead of squashing everything below the top few.
    """
    binary = sp.csr_matrix(user_items, copy=True)
    binary.sum_duplicates()
    counts = np.diff(binary.tocsc().indptr).astype(np.float64)
    scores = np.log1p(counts)
    top = scores.max() if scores.size else 0.0
    return (scores / top if top > 0 else scores).astype(np.float32)


def quality_scores(
    avg_rating: np.ndarray, num_ratings: np.ndarray, prior_count: float = 20.0
) -> np.ndarray:
    """Bayesian-smoothed rating mapped from [1, 5] to [0, 1]: ``(n,)`` float32.

    ``(r̄·n + μ·m) / (n + m)`` with ``μ`` the catalogue's mean rating and ``m = prior_count``, so a
    single 5★ review does not outrank a thousand 4.8★ ones. Missing ratings count as the prior.
    """
    ratings = np.asarray(avg_rating, dtype=np.float64)
    counts = np.nan_to_num(np.asarray(num_ratings, dtype=np.float64), nan=0.0).clip(min=0)
    valid = np.isfinite(ratings) & (counts > 0)
    mean = float(np.average(ratings[valid], weights=counts[valid])) if valid.any() else 3.0
    ratings = np.where(valid, ratings, mean)
    smoothed = (ratings * counts + mean * prior_count) / (counts + prior_count)
    return ((smoothed - 1.0) / 4.0).clip(0.0, 1.0).astype(np.float32)


_SECONDS_PER_DAY = 86400.0
_MAX_HALVINGS = 500.0  # float64 holds 2**±1000: one reference time per 500 half-lives of requests


@dataclass(frozen=True)
class PopularityHistory:
    """Time-stamped positive interactions: popularity *as of* any moment, with optional decay.

    Why: items trend. On the Hasaki reviews, the items reviewed in the month before a held-out
    review predict it far better than all-time counts (validation chooses the half-life), and
    all-time counts taken over the whole history also count interactions that happened *after*
    the moment being predicted. ``at(times)`` uses only interactions strictly before each time.

    ``items``/``seconds``: ``(E,)`` item index and Unix seconds of each interaction (one per user
    and item), sorted by time; ``half_life_days`` None counts every past interaction equally.

    ``live_period_days`` set (:meth:`as_served`): popularity as a service rebuilt every that many
    days (periods from 1970-01-01 UTC) and fed by events serves it: the interactions before the
    start of the request's period count 1 each (the build's counts), those from the period start
    on count ``live_weight`` each (live events, ``events.popularity_weights``).
    """

    items: np.ndarray
    seconds: np.ndarray
    n_items: int
    half_life_days: float | None = None
    live_period_days: float | None = None
    live_weight: float = 1.0

    @classmethod
    def from_events(
        cls, items: np.ndarray, seconds: np.ndarray, n_items: int, half_life_days: float | None
    ) -> PopularityHistory:
        """Sort the events by time; ``half_life_days`` must be positive (or None)."""
        if half_life_days is not None and not half_life_days > 0:
            raise ValueError(f"half_life_days must be > 0 or None, got {half_life_days!r}")
        items = np.asarray(items, dtype=np.int64)
        seconds = np.asarray(seconds, dtype=np.int64)
        if items.shape != seconds.shape:
            raise ValueError(f"items {items.shape} and seconds {seconds.shape} differ in shape")
        order = np.argsort(seconds, kind="stable")
        return cls(items[order], seconds[order], int(n_items), half_life_days)

    def as_served(self, period_days: float, live_weight: float) -> PopularityHistory:
        """This history counted as a live service counts it (see the class docstring)."""
        if not period_days > 0 or not live_weight >= 0:
            raise ValueError(
                f"period {period_days!r} must be > 0, live weight {live_weight!r} >= 0"
            )
        return dataclasses.replace(self, live_period_days=period_days, live_weight=live_weight)

    def counted_since_period(self, times: np.ndarray, period_days: float) -> np.ndarray:
        """``(b,)`` bool: an interaction lies between the start of each time's rebuild period and
        the time itself (a live service then serves live popularity)."""
        times = np.asarray(times, dtype=np.int64)
        period = period_days * _SECONDS_PER_DAY
        starts = (np.floor(times / period) * period).astype(np.int64)
        return np.searchsorted(self.seconds, times, side="left") > np.searchsorted(
            self.seconds, starts, side="left"
        )

    def latest(self) -> np.ndarray:
        """``(n,)`` popularity just after the newest interaction: what serving uses "now".

        With exponential decay every item's count shrinks by the same factor as time passes, so
        the order of this vector stays right for any later moment.
        """
        end = int(self.seconds[-1]) + 1 if self.seconds.size else 0
        return self.at(np.array([end]))[0]

    def at(self, times: np.ndarray) -> np.ndarray:
        """``(b, n)`` float32: ``log1p`` of each item's (decayed) interaction count strictly
        before each of ``times`` (Unix seconds), each row divided by its maximum (0 if none).

        One running ``(n,)`` float64 count is carried from moment to moment (the events between
        two moments added, in time order), so the work per moment is a pass over one row that
        stays in cache; a ``(moments × n)`` float64 matrix (400 MB per 1,024 moments at 50K
        items) and its cumsum/log/divide passes are never built. The sums are the same
        additions in the same order as a bincount + cumsum over moments, so the values are too.
        """
        times = np.asarray(times, dtype=np.int64)
        moments, inverse = np.unique(times, return_inverse=True)
        out = np.empty((moments.size, self.n_items), dtype=np.float32)
        half_life = None if self.half_life_days is None else self.half_life_days * _SECONDS_PER_DAY
        span = np.inf if half_life is None else _MAX_HALVINGS * half_life
        begin = 0
        while begin < moments.size:
            end = int(np.searchsorted(moments, moments[begin] + span, side="right"))
            self._fill(moments[begin:end], half_life, out[begin:end])
            begin = end
        inverse = inverse.reshape(-1)
        if inverse.size == moments.size and np.array_equal(inverse, np.arange(inverse.size)):
            return out  # distinct sorted times: the rows are already in request order
        return out[inverse]

    def _fill(self, moments: np.ndarray, half_life: float | None, out: np.ndarray) -> None:
        """``out[i]``: scaled popularity before the sorted ``moments[i]``, decayed to it."""
        last = int(np.searchsorted(self.seconds, moments[-1], side="left"))
        seconds, items = self.seconds[:last], self.items[:last]
        cuts = np.searchsorted(seconds, moments, side="left")  # moment i counts events[:cuts[i]]
        weights = factors = None
        if half_life is not None:  # relative to the last moment; >= 1000 half-lives underflow to 0
            weights = np.exp2((seconds - moments[-1]) / half_life)
            factors = np.exp2((moments[-1] - moments) / half_life)
        running = np.zeros(self.n_items)
        scores = np.empty(self.n_items)
        live = self.live_period_days is not None and self.live_weight != 1.0
        if live:  # moment i: events[:period_cuts[i]] are the build's, the rest up to it live
            period = float(self.live_period_days) * _SECONDS_PER_DAY  # type: ignore[arg-type]
            period_starts = np.floor(moments / period) * period
            period_cuts = np.searchsorted(seconds, period_starts, side="left").tolist()
            at_start = np.zeros(self.n_items)
            current_start = None
        start = 0
        for row, stop in enumerate(cuts.tolist()):
            if live and period_starts[row] != current_start:  # a new period: snapshot its start
                begin = period_cuts[row]
                running += self._counts(items, weights, start, begin)
                start = max(start, begin)
                at_start[:] = running
                current_start = period_starts[row]
            if stop > start:
                running += self._counts(items, weights, start, stop)
                start = stop
            if live:  # running + (w - 1) * (what came since the period start)
                counted = running + (self.live_weight - 1.0) * (running - at_start)
                np.copyto(scores, counted)
                if factors is not None:
                    np.multiply(scores, factors[row], out=scores)
                np.log1p(scores, out=scores)
            elif factors is None:
                np.log1p(running, out=scores)
            else:
                np.log1p(np.multiply(running, factors[row], out=scores), out=scores)
            top = scores.max() if scores.size else 0.0
            if top > 0:
                out[row] = np.divide(scores, top, out=scores)
            else:
                out[row] = 0.0

    def _counts(
        self, items: np.ndarray, weights: np.ndarray | None, start: int, stop: int
    ) -> np.ndarray | float:
        """``(n,)`` (decayed) counts of events ``start .. stop - 1`` (zeros when empty)."""
        if stop <= start:
            return 0.0
        step = None if weights is None else weights[start:stop]
        return np.bincount(items[start:stop], weights=step, minlength=self.n_items)
