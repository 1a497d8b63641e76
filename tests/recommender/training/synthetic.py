"""A small synthetic :class:`ProcessedData` with cluster structure, for training/evaluation tests.

Users belong to one of ``clusters`` taste groups and mostly pick items of their group, so CF and
item-kNN beat popularity; with ``trend`` > 0 that share of picks is the item in fashion (a new
one every 3 days). Splits follow prepare's leave-last-positive-out labelling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.processed import ProcessedData


def synthetic_data(
    directory: Path | str = "/nonexistent/synthetic",
    users: int = 400,
    items: int = 60,
    clusters: int = 4,
    seed: int = 0,
    trend: float = 0.0,
) -> ProcessedData:
    rng = np.random.default_rng(seed)
    item_cluster = np.arange(items) % clusters
    popularity = rng.zipf(1.6, items).astype(float)
    rows = []
    base = pd.Timestamp("2024-01-01", tz="UTC")
    for u in range(users):
        c = rng.integers(clusters)
        n = int(rng.integers(1, 9))
        p = popularity * np.where(item_cluster == c, 8.0, 1.0)
        picks = rng.choice(items, size=min(n, items), replace=False, p=p / p.sum())
        chosen: list[int] = []
        for t, i in enumerate(picks):
            day = int(u % 50) + t
            fashion = (day // 3 * 7) % items  # the item in fashion these three days
            if trend and rng.random() < trend and fashion not in chosen:
                i = fashion
            if i in chosen:
                continue
            chosen.append(i)
            rating = 5 if rng.random() < 0.85 else 2
            rows.append((f"u{u}", f"p{i}", rating, base + pd.Timedelta(days=day)))
    frame = pd.DataFrame(rows, columns=[V.USER_ID, V.PRODUCT_ID, V.RATING, V.TIMESTAMP])
    frame[V.WEIGHT] = 1.0 + (frame[V.RATING] - 3).clip(lower=0) / 2
    frame[V.SOURCE] = "synthetic"
    frame[V.IS_POSITIVE] = frame[V.RATING] >= 4
    frame[V.SPLIT] = V.SPLIT_TRAIN
    counts = frame.groupby(V.USER_ID)[V.PRODUCT_ID].transform("size")
    n_pos = frame.groupby(V.USER_ID)[V.IS_POSITIVE].transform("sum")
    trainable_users = sorted(set(frame.loc[(counts >= 2) & (n_pos >= 1), V.USER_ID]))
    frame = frame.sort_values([V.USER_ID, V.TIMESTAMP]).reset_index(drop=True)
    for _, group in frame[frame[V.IS_POSITIVE]].groupby(V.USER_ID):
        if len(group) >= 2 and group[V.USER_ID].iloc[0] in trainable_users:
            frame.loc[group.index[-1], V.SPLIT] = V.SPLIT_TEST
            if len(group) >= 3:
                frame.loc[group.index[-2], V.SPLIT] = V.SPLIT_VAL
    item_ids = [f"p{i}" for i in range(items)]
    products = pd.DataFrame(
        {
            V.PRODUCT_ID: item_ids,
            V.NAME: [f"product {i}" for i in range(items)],
            V.AVG_RATING: rng.uniform(3.5, 5.0, items),
            V.NUM_RATINGS: rng.integers(0, 50, items),
        }
    )
    user_ids = sorted(frame[V.USER_ID].unique(), key=lambda s: int(s[1:]))
    return ProcessedData(
        directory=Path(directory),
        data_version="synthetic-v1",
        products=products,
        interactions=frame,
        item_ids=item_ids,
        user_ids=user_ids,
        trainable_user_ids=sorted(trainable_users, key=lambda s: int(s[1:])),
        popular=[],
        stats={},
    )
