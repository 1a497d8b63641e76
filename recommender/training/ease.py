"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a closed-form item-item model.

``B = argmin ‖X − XB‖² + λ‖B‖²`` subject to ``diag(B) = 0`` has the solution
``P = (XᵀX + λI)⁻¹``, ``B_ij = −P_ij / P_jj`` (``i ≠ j``), ``B_jj = 0``; a user's scores are
``x_u B``. ``X`` is the binarised users × items matrix. There are no user factors, so a cold user
is scored exactly like a trainable one (no fold-in); the price is an ``n × n`` inverse to fit and a
dense ``n × n`` ``B`` to serve, hence ``ease.max_items`` in ``config/training.yaml``.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from recommender import vocabulary as V
from recommender.config.training import EASEParams
from recommender.data.matrix import binarise
from recommender.scoring.factors import FactorModel


def ease_weights(user_items: sp.csr_matrix, regularization: float, threads: int = 2) -> np.ndarray:
    """EASE's ``B`` ``(n, n)`` float32 from the binarised ``user_items`` (users × items)."""
    binary = binarise(user_items)
    gram = np.asarray((binary.T @ binary).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    with threadpool_limits(threads, "blas"):  # both cores, never more (1 in parallel tuning)
        precision = np.linalg.inv(gram)
    weights = precision / -np.diag(precision)[None, :]
    weights[np.diag_indices_from(weights)] = 0.0
    return np.ascontiguousarray(weights, dtype=np.float32)


def fit_ease(user_items: sp.csr_matrix, params: EASEParams, threads: int = 2) -> FactorModel:
    """A :class:`FactorModel` carrying ``B`` (``item_item``) and zero-column factor matrices."""
    n_users, n_items = user_items.shape
    start = time.perf_counter()
    weights = ease_weights(user_items, params.regularization, threads)
    return FactorModel(
        model_type=V.MODEL_EASE,
        user_factors=np.zeros((n_users, 0), dtype=np.float32),
        item_factors=np.zeros((n_items, 0), dtype=np.float32),
        params=params,
        fold_in_regularization=1.0,  # unused: EASE scores every user from the history
        training_seconds=time.perf_counter() - start,
        item_item=weights,
    )
