"""Validation users resampled to the test population's make-up (``tuning.validation_population``).

Why: a validation target needs a later positive (the test one) after it, so the validation users
are, by construction, users who came back: on the Hasaki reviews 46% of the trainable
validation users have one prior positive against 54% of the test's, and 26% of them come back
after more than 90 days against 34% of the test's. Choices tuned on validation then favour what
returning, recently active users reward.

``matched`` resamples each validation population (the search set and every cross-fitted fold)
to the test stage's shares of strata of (number of prior positives: 0, 1, 2, 3+) x (time since
the newest prior positive at the request: <= 1 day, <= 30, <= 180, more). Only the test users'
history lengths and request times are read, never a test item, so no choice sees a test label;
users without a prior positive are kept as they are, and the number of the others too
(over-represented strata are subsampled, the others drawn with replacement), so standard errors
keep their scale but count a duplicated user as two.
"""

from __future__ import annotations

import numpy as np

from recommender.evaluation.protocol import EvaluationSet

# upper edges (days) of the gap bins of users with a prior positive; larger gaps: the last bin
GAP_EDGES_DAYS = (1.0, 30.0, 180.0)
MAX_HISTORY_BIN = 3  # 3 = three or more prior positives
NO_HISTORY = 0  # the stratum of users without a prior positive
_SECONDS_PER_DAY = 86400.0


def strata(users: EvaluationSet) -> np.ndarray:
    """Stratum of each user: 0 without a prior positive, else one per (history bin, gap bin)."""
    lengths = np.fromiter((len(h) for h in users.histories), dtype=np.int64, count=len(users))
    gaps = (
        np.full(len(users), np.inf)
        if users.previous_gaps is None
        else np.asarray(users.previous_gaps, dtype=np.float64)
    )
    gap_bin = np.searchsorted(np.asarray(GAP_EDGES_DAYS) * _SECONDS_PER_DAY, gaps, side="left")
    history_bin = np.minimum(lengths, MAX_HISTORY_BIN)
    codes = 1 + (history_bin - 1) * (len(GAP_EDGES_DAYS) + 1) + gap_bin
    return np.where(lengths == 0, NO_HISTORY, codes).astype(np.int64)


def stratum_shares(users: EvaluationSet) -> dict[int, float]:
    """Share of ``users`` in each non-empty stratum."""
    codes = strata(users)
    values, counts = np.unique(codes, return_counts=True)
    return {int(v): float(c) / max(len(codes), 1) for v, c in zip(values, counts, strict=True)}


def matched_users(users: EvaluationSet, shares: dict[int, float], seed: int) -> EvaluationSet:
    """``users`` resampled (seeded, same size) to the stratum ``shares`` of a reference population.

    Users without a prior positive are kept as they are (they only score popularity), so the
    users with one keep their number too. Strata the reference has but ``users`` lack are left
    out and the remaining shares renormalised; every draw of a stratum takes each of its users
    once before any user twice."""
    codes = strata(users)
    present = {s: p for s, p in shares.items() if s != NO_HISTORY and np.any(codes == s)}
    total = sum(present.values())
    with_history = int(np.count_nonzero(codes != NO_HISTORY))
    if with_history == 0 or total <= 0:
        return users
    rng = np.random.default_rng(seed)
    wanted = _largest_remainder({s: p / total * with_history for s, p in present.items()})
    picks = [np.flatnonzero(codes == NO_HISTORY)]
    for stratum in sorted(wanted):
        members = np.flatnonzero(codes == stratum)
        count = wanted[stratum]
        whole, rest = divmod(count, members.size)
        chosen = [np.tile(members, whole), rng.choice(members, size=rest, replace=False)]
        picks.append(np.concatenate(chosen))
    positions = np.sort(np.concatenate(picks)) if picks else np.zeros(0, dtype=np.int64)
    return users.subset(positions)


def _largest_remainder(quotas: dict[int, float]) -> dict[int, int]:
    """Integer counts summing to ``round(sum(quotas))``, each the floor or ceiling of its quota."""
    floors = {s: int(np.floor(q)) for s, q in quotas.items()}
    left = int(round(sum(quotas.values()))) - sum(floors.values())
    for s in sorted(quotas, key=lambda s: (floors[s] - quotas[s], s))[:left]:
        floors[s] += 1
    return floors
