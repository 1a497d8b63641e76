"""Sparse interaction matrices built from the processed interactions of chosen splits.

Orientation is always users × items (what ``implicit >= 0.7`` expects for ``fit``): rows follow a
user mapping (CF rows = ``trainable_user_mapping.json``), columns the canonical item order. Only
positive interactions enter; values are the ``weight`` column (the confidence basis for ALS).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.data.processed import ProcessedData
from recommender.errors import InvalidDataError


def item_codes(data: ProcessedData, frame: pd.DataFrame) -> np.ndarray:
    """Canonical item index of each row of ``frame``; unknown product ids are an error."""
    codes = frame[V.PRODUCT_ID].astype(str).map(data.item_index)
    if codes.isna().any():
        missing = frame.loc[codes.isna(), V.PRODUCT_ID].astype(str).unique()[:5].tolist()
        raise InvalidDataError(
            f"{V.INTERACTIONS_FILE} in {data.directory} references products missing from "
            f"{V.PRODUCTS_FILE} (e.g. {missing}). Re-run `python -m recommender prepare`."
        )
    return codes.to_numpy(dtype=np.int64)


def positive_rows(data: ProcessedData, splits: Sequence[str]) -> pd.DataFrame:
    """Positive interactions whose ``split`` is in ``splits``."""
    unknown = set(splits) - set(V.SPLITS)
    if unknown:
        raise ValueError(f"unknown split labels {sorted(unknown)}; expected some of {V.SPLITS}")
    frame = data.interactions
    mask = frame[V.SPLIT].isin(list(splits)) & frame[V.IS_POSITIVE].astype(bool)
    return frame.loc[mask]


def user_item_matrix(
    data: ProcessedData, splits: Sequence[str], user_ids: Sequence[str] | None = None
) -> sp.csr_matrix:
    """``(len(user_ids), n_items)`` float32 CSR of positive weights from ``splits``.

    ``user_ids`` defaults to the trainable users (CF rows); interactions of users outside it are
    dropped. Duplicate (user, item) pairs keep their largest weight.
    """
    users = list(data.trainable_user_ids if user_ids is None else user_ids)
    index = {uid: row for row, uid in enumerate(users)}
    frame = positive_rows(data, splits)
    rows = frame[V.USER_ID].astype(str).map(index)
    keep = rows.notna().to_numpy()
    frame = frame.loc[keep]
    row_idx = rows[keep].to_numpy(dtype=np.int64)
    col_idx = item_codes(data, frame)
    weights = pd.to_numeric(frame[V.WEIGHT], errors="coerce").fillna(1.0).to_numpy(np.float32)
    shape = (len(users), len(data.item_ids))
    matrix = _max_duplicates(row_idx, col_idx, weights, shape)
    if matrix.shape != shape:  # pragma: no cover - guards the mapping contract
        raise AssertionError(f"matrix shape {matrix.shape} != mapping shape {shape}")
    return matrix


def all_users_matrix(data: ProcessedData, splits: Sequence[str]) -> sp.csr_matrix:
    """Positive interactions of every known user (``user_item_mappings.json`` order).

    Popularity and item-kNN use this: users without a CF row still count as co-occurrence and
    popularity evidence.
    """
    return user_item_matrix(data, splits, data.user_ids)


def _max_duplicates(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int]
) -> sp.csr_matrix:
    if rows.size:
        order = np.lexsort((-values, cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
        first = np.ones(rows.size, dtype=bool)
        first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
        rows, cols, values = rows[first], cols[first], values[first]
    return sp.csr_matrix((values, (rows, cols)), shape=shape, dtype=np.float32)


def binarise(matrix: sp.csr_matrix) -> sp.csr_matrix:
    """Copy of ``matrix`` with every stored value set to 1 (float32)."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out
