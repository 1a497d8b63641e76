"""A fitted matrix-factorisation model: factors + the hyperparameters that made them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recommender.config.training import ALSParams, BPRParams, EASEParams


@dataclass(frozen=True)
class FactorModel:
    """Fitted CF factors.

    ``user_factors`` ``(n_trainable, d)`` float32 — row ``i`` is ``trainable_user_ids[i]``;
    ``item_factors`` ``(n_items, d)`` float32 — row ``j`` is ``item_ids[j]``. For ALS
    ``d = factors``; for BPR ``d = factors + 1`` (implicit's layout: the users' last column is 1,
    the items' last column is the item bias), so ``U @ V.T`` is the full BPR score. EASE has no
    factors (``d = 0``) and carries ``item_item`` ``(n_items, n_items)`` float32 instead: a user's
    scores are ``x_u @ item_item`` (:mod:`recommender.scoring.ease`).
    """

    model_type: str
    user_factors: np.ndarray
    item_factors: np.ndarray
    params: ALSParams | BPRParams | EASEParams
    fold_in_regularization: float
    training_seconds: float
    item_item: np.ndarray | None = None  # EASE's B; None for factor models

    @property
    def n_factors(self) -> int:
        """Columns of the factor matrices (``d``)."""
        return int(self.item_factors.shape[1])


def check_factor_shapes(
    user_factors: np.ndarray, item_factors: np.ndarray, n_users: int, n_items: int, d: int
) -> None:
    """AssertionError unless U is ``(n_users, d)`` and V ``(n_items, d)``, both float32 and finite.

    Guards the classic bug of feeding ``implicit`` an items × users matrix: the factors come back
    swapped and every score is meaningless without any error.
    """
    if user_factors.shape != (n_users, d):
        raise AssertionError(
            f"user factors have shape {user_factors.shape}, expected ({n_users}, {d}): "
            "rows must be the trainable users"
        )
    if item_factors.shape != (n_items, d):
        raise AssertionError(
            f"item factors have shape {item_factors.shape}, expected ({n_items}, {d}): "
            "rows must be the catalogue items"
        )
    for name, array in (("user", user_factors), ("item", item_factors)):
        if array.dtype != np.float32:
            raise AssertionError(f"{name} factors are {array.dtype}, expected float32")
        if not np.isfinite(array).all():
            raise AssertionError(f"{name} factors contain NaN/inf; lower the learning rate")
