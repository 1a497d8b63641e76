"""ALS (Hu, Koren & Volinsky 2008) through ``implicit.cpu``, fitted on a users × items matrix.

Confidence: ``c_ui = 1 + alpha · w_ui`` for observed positives (``w`` = the ``weight`` column), 1
for everything else. implicit treats the *stored* value as the confidence and its own ``alpha`` only
multiplies the stored matrix (``c = alpha · w``), which would give observed items with a small
weight less confidence than unobserved ones; so we build ``1 + alpha · w`` here and pass
``alpha=1.0`` to implicit. Fold-in at serving time uses the same confidences.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from recommender import vocabulary as V
from recommender.config.training import ALSParams
from recommender.scoring.factors import FactorModel, check_factor_shapes


def confidence_matrix(user_items: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """``1 + alpha · w`` on the stored entries of ``user_items`` (float32 CSR)."""
    out = sp.csr_matrix(user_items, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    out.data = (1.0 + alpha * out.data).astype(np.float32)
    return out


def confidences_for(weights: np.ndarray, alpha: float) -> np.ndarray:
    """Fold-in confidences of one history's weights, the same formula as training."""
    return 1.0 + alpha * np.asarray(weights, dtype=np.float64)


# on_chunk(iterations_done, user_factors, item_factors): tuning's intermediate validation value
OnChunk = Callable[[int, np.ndarray, np.ndarray], None]


def fit_als(
    user_items: sp.csr_matrix,
    params: ALSParams,
    num_threads: int = 0,
    on_chunk: OnChunk | None = None,
    every: int = 0,
) -> FactorModel:
    """Fit ALS on ``user_items`` ``(n_trainable, n_items)`` weights; factors are float32.

    The result is deterministic for a given ``params.random_state`` (ALS user/item steps are
    independent per row, so threads do not change the numbers). ``on_chunk`` is called after every
    ``every`` iterations but the last (it may raise to stop the fit: a pruned tuning trial).
    """
    n_users, n_items = user_items.shape
    start = time.perf_counter()
    # implicit runs its own threads; a BLAS thread pool on top of them only adds contention.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=params.factors,
            regularization=params.regularization,
            alpha=1.0,
            iterations=params.iterations,
            random_state=params.random_state,
            num_threads=num_threads,
            dtype=np.float32,
        )

        def callback(iteration: int, _seconds: float, _loss: float | None) -> None:
            done = iteration + 1
            last = done >= params.iterations
            if on_chunk is not None and every > 0 and done % every == 0 and not last:
                on_chunk(done, model.user_factors, model.item_factors)

        model.fit(
            confidence_matrix(user_items, params.alpha), show_progress=False, callback=callback
        )
    seconds = time.perf_counter() - start
    user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
    item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
    check_factor_shapes(user_factors, item_factors, n_users, n_items, params.factors)
    return FactorModel(
        model_type=V.MODEL_ALS,
        user_factors=user_factors,
        item_factors=item_factors,
        params=params,
        fold_in_regularization=params.regularization,
        training_seconds=seconds,
    )
