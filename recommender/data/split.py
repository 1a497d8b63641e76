"""Dedup, confidence weights, positives, user segments and the temporal split.

All functions are pure (DataFrame in, DataFrame out) and deterministic: ties in time are broken by
product id, so the same input always gives the same split.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender import vocabulary as V

NEUTRAL_RATING = 3.0


def dedup_latest(interactions: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """One row per (user, product): the latest (ties: the later row). Returns (rows, n removed)."""
    ordered = interactions.sort_values([V.USER_ID, V.PRODUCT_ID, V.TIMESTAMP], kind="stable")
    kept = ordered.drop_duplicates([V.USER_ID, V.PRODUCT_ID], keep="last")
    return kept, len(interactions) - len(kept)


def confidence_weights(rating: np.ndarray, base: np.ndarray, alpha: float) -> np.ndarray:
    """Confidence of an observed interaction for implicit-feedback models.

    ``weight = base · (1 + alpha · max(rating − 3, 0) / 2)``: 1 for 3★ and below (an observed
    purchase still says something), 1 + alpha/2 for 4★, 1 + alpha for 5★. ``base`` is the source's
    own weight (1.0 unless a canonical file brings one, e.g. a purchase count).
    """
    lift = np.clip(np.asarray(rating, dtype=np.float64) - NEUTRAL_RATING, 0.0, None) / 2.0
    return np.asarray(base, dtype=np.float64) * (1.0 + alpha * lift)


def assign_splits(
    interactions: pd.DataFrame, positive_threshold: float
) -> tuple[pd.DataFrame, list[str]]:
    """Add ``is_positive`` and ``split``; return (rows sorted by user/time, sorted trainable ids).

    Trainable users have >= 2 interactions with >= 1 positive; all others are cold and keep every
    row in ``train``. For a trainable user the latest positive is ``test`` and the latest positive
    before it is ``val`` — only when the user has >= 3 interactions, so that ``train`` always keeps
    one row for the validation stage to start from (a 2-interaction user is train + test). Every
    other row is ``train``.
    """
    frame = interactions.sort_values([V.USER_ID, V.TIMESTAMP, V.PRODUCT_ID], kind="stable")
    frame = frame.reset_index(drop=True)
    positive = frame[V.RATING].to_numpy() >= positive_threshold
    frame[V.IS_POSITIVE] = positive
    users = frame[V.USER_ID]
    n_rows = users.map(users.value_counts()).to_numpy()
    n_pos = frame.groupby(V.USER_ID)[V.IS_POSITIVE].transform("sum").to_numpy()
    trainable = (n_rows >= 2) & (n_pos >= 1)

    split = np.full(len(frame), V.SPLIT_TRAIN, dtype=object)
    candidates = np.flatnonzero(trainable & positive)
    # rank of each positive counted from the user's latest one (0 = latest)
    from_end = (
        frame.iloc[candidates].groupby(V.USER_ID, sort=False).cumcount(ascending=False).to_numpy()
    )
    split[candidates[from_end == 0]] = V.SPLIT_TEST
    val = candidates[(from_end == 1) & (n_rows[candidates] >= 3)]
    split[val] = V.SPLIT_VAL
    frame[V.SPLIT] = pd.Series(split, dtype="str")
    trainable_ids = sorted(frame.loc[trainable, V.USER_ID].unique().tolist())
    return frame, trainable_ids


def popular_items(interactions: pd.DataFrame, item_ids: list[str], top_k: int) -> dict[str, object]:
    """Most popular products: ``{"method", "items": [{product_id, score, count}]}``, best first.

    ``score`` = number of positive interactions (users who liked it), ``count`` = all interactions;
    ranked by score, then count, then catalogue order. Products without interactions are not listed.
    """
    grouped = interactions.groupby(V.PRODUCT_ID).agg(
        score=(V.IS_POSITIVE, "sum"), count=(V.USER_ID, "size")
    )
    order = pd.Series(np.arange(len(item_ids)), index=item_ids)
    grouped["order"] = order.reindex(grouped.index).to_numpy()
    grouped = grouped.sort_values(["score", "count", "order"], ascending=[False, False, True])
    top = grouped.head(top_k)
    return {
        "method": "positive_count",
        "items": [
            {V.PRODUCT_ID: str(pid), "score": float(s), "count": int(c)}
            for pid, s, c in zip(top.index, top["score"], top["count"], strict=True)
        ],
    }
