"""One user's hybrid blend and rounding, compiled (numba): a pass per signal instead of six
numpy calls (min, max, ``− lo``, ``/ span``, ``× weight``, ``+ total``) and three for rounding.

Bit for bit :func:`~recommender.scoring.hybrid.combine` on a batch of one and ``np.round``
(pinned in ``tests/recommender/serving/test_single_request.py``): the same IEEE float32
operations in the same order, no ``fastmath`` (no reassociation, no fused multiply-adds):

- a signal to normalise: ``lo``/``hi`` its min/max (NaN if it holds one, as numpy's), ``span =
  hi − lo``; with ``span > 0`` the term is ``((x − lo) / span) · w``, else ``0 · w``;
- a prenormalised (static) signal: ``x · w``;
- the first term is the total, later ones are added to it (``np.add(total, term)``);
- rounding to ``d`` decimals: ``rint(x · 10^d) / 10^d`` in float32, numpy's ``round``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def add_term(
    total: np.ndarray, values: np.ndarray, weight: np.float32, normalise: bool, first: bool
) -> None:  # pragma: no cover - compiled
    """``total (+)= weight · minmax(values)`` (``normalise``) or ``weight · values``, in place;
    ``first``: ``total`` is set instead of added to."""
    n = values.shape[0]
    lo = values[0] if n else np.float32(0.0)
    hi = lo
    spread = normalise and n > 0
    if spread:
        has_nan = np.isnan(lo)
        for i in range(1, n):
            v = values[i]
            if np.isnan(v):
                has_nan = True
            elif v < lo:
                lo = v
            elif v > hi:
                hi = v
        span = hi - lo
        spread = not has_nan and span > 0
    for i in range(n):
        if spread:
            term = (values[i] - lo) / span * weight
        elif normalise:
            term = np.float32(0.0) * weight
        else:
            term = values[i] * weight
        total[i] = term if first else total[i] + term


@numba.njit(cache=True, nogil=True)
def round_row(values: np.ndarray, scale: np.float32) -> None:  # pragma: no cover - compiled
    """``np.round(values, d, out=values)`` for float32 ``values``, ``scale = 10^d``."""
    for i in range(values.shape[0]):
        values[i] = np.rint(values[i] * scale) / scale


def warm_up(static: Iterable[np.ndarray] = ()) -> None:
    """Compile (or load from numba's on-disk cache) the kernels for the argument types a
    request passes, at load time rather than in the first request: a new signal row, and
    ``static`` (a model's prenormalised vectors, as they are stored)."""
    total = np.empty(1, dtype=np.float32)
    read_only = np.zeros(1, dtype=np.float32)
    read_only.setflags(write=False)
    for values in (np.zeros(1, dtype=np.float32), read_only, *static):
        add_term(total, values[:1], np.float32(1.0), True, True)
    round_row(total, np.float32(1.0))
