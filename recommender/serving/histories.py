"""Every known user's full history (train + val + test) as one CSR-like pair of arrays.

Serving excludes everything a user has interacted with, not only the train split, so the history
here is the whole of ``interactions.parquet``. For 300K users a dict of lists would cost hundreds of
MB of Python objects; two int arrays plus one id -> row dict do not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, overload

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.data.processed import unix_seconds
from recommender.errors import ModelLoadError
from recommender.scoring import session_items


def encoded_ids(user_ids: Sequence[str]) -> np.ndarray:
    """``(n,)`` fixed-width UTF-8 bytes of ``user_ids``, in row order: one array that N workers
    memory-map, where a tuple of str plus a dict cost ~150 bytes a user in every worker."""
    return np.array([u.encode("utf-8") for u in user_ids], dtype=np.bytes_)


class UserIds(Sequence[str]):
    """Known user ids in row order over :func:`encoded_ids` (e.g. memory-mapped)."""

    def __init__(self, encoded: np.ndarray) -> None:
        self.encoded = encoded

    def __len__(self) -> int:
        return len(self.encoded)

    @overload
    def __getitem__(self, row: int) -> str: ...
    @overload
    def __getitem__(self, row: slice) -> list[str]: ...
    def __getitem__(self, row: int | slice) -> str | list[str]:
        if isinstance(row, slice):
            return [bytes(b).decode("utf-8") for b in self.encoded[row]]
        return bytes(self.encoded[row]).decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        return (bytes(b).decode("utf-8") for b in self.encoded)


class UserIndex(Mapping[str, int]):
    """User id -> row by binary search over the ids sorted (``sorted_ids``, ``rows``: the row of
    each), both plain arrays that workers memory-map and share; ~2 µs a lookup."""

    def __init__(self, sorted_ids: np.ndarray, rows: np.ndarray) -> None:
        self.sorted_ids = sorted_ids
        self.rows = rows
        # the last id looked up and its row: one request asks for its user's row up to four
        # times (results key, segment, stale gate, routing); a tuple is swapped atomically, so
        # threads never see an id with another's row
        self._last: tuple[str, int] = ("", -1)

    @classmethod
    def of(cls, encoded: np.ndarray) -> UserIndex:
        """The index of :func:`encoded_ids` (sorted here; stored arrays come sorted)."""
        order = np.argsort(encoded, kind="stable")
        return cls(encoded[order], order.astype(np.int64))

    def _row(self, user_id: object) -> int:
        if not isinstance(user_id, str):
            return -1
        last = self._last
        if last[0] == user_id and user_id:
            return last[1]
        key = user_id.encode("utf-8")
        if len(key) > self.sorted_ids.itemsize:  # longer than every id (and searchsorted would
            return -1  # copy the whole array to the key's wider dtype: O(n) a lookup)
        at = int(self.sorted_ids.searchsorted(key))  # the method: no dispatch wrapper
        row = -1
        if at < len(self.sorted_ids) and self.sorted_ids[at] == key:
            row = int(self.rows[at])
        self._last = (user_id, row)
        return row

    def rows_of(self, user_ids: Sequence[str]) -> np.ndarray:
        """``(n,)`` int64 rows of many ids (-1 unknown): one ``searchsorted`` for a whole batch
        instead of a binary search per id."""
        if not user_ids or not len(self.sorted_ids):
            return np.full(len(user_ids), -1, dtype=np.int64)
        encoded = [u.encode("utf-8") for u in user_ids]
        fits = np.array([len(k) <= self.sorted_ids.itemsize for k in encoded])
        # keys in the ids' own width (a wider key dtype would copy the whole id array); a longer
        # key, truncated by the cast, is no id (``fits``)
        keys = np.array(encoded, dtype=np.bytes_).astype(self.sorted_ids.dtype)
        at = np.minimum(np.searchsorted(self.sorted_ids, keys), len(self.sorted_ids) - 1)
        found = fits & (self.sorted_ids[at] == keys)
        return np.where(found, self.rows[at], -1).astype(np.int64)

    def __getitem__(self, user_id: str) -> int:
        row = self._row(user_id)
        if row < 0:
            raise KeyError(user_id)
        return row

    def __contains__(self, user_id: object) -> bool:
        return self._row(user_id) >= 0

    def get(self, user_id: str, default: Any = None) -> Any:  # type: ignore[override]
        """The row of ``user_id``, else ``default`` (without Mapping.get's raised KeyError:
        most visitors are unknown)."""
        row = self._row(user_id)
        return default if row < 0 else row

    def __len__(self) -> int:
        return len(self.sorted_ids)

    def __iter__(self) -> Iterator[str]:
        return (bytes(b).decode("utf-8") for b in self.sorted_ids)


@dataclass(frozen=True)
class UserHistories:
    """Known users and their item indices.

    Attributes:
        user_ids: known user ids; row ``r`` is ``user_ids[r]``.
        index: user id -> row.
        indptr: (n_users + 1,) int64; row ``r``'s items are ``indices[indptr[r]:indptr[r + 1]]``.
        indices: (nnz,) int32 item indices, each user's in time order, no duplicates.
        cf_rows: (n_users,) int32 CF row of a trainable user, -1 for the others.
        seconds: (nnz,) int64 Unix seconds of each ``indices`` entry (its first interaction),
            None when the interactions carry no timestamp; item-kNN sessions are cut on it.
        positive: (nnz,) bool, whether each entry is a positive interaction (rating at or above
            the threshold); None = all positive. Every entry is *seen* (never recommended), but
            only positives are evidence of taste: the user's scored history, item-kNN,
            popularity and sessions use them, exactly as evaluation and training do.
    """

    user_ids: Sequence[str]
    index: Mapping[str, int]
    indptr: np.ndarray
    indices: np.ndarray
    cf_rows: np.ndarray
    seconds: np.ndarray | None = None
    positive: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_trainable(self) -> int:
        return int(np.count_nonzero(self.cf_rows >= 0))

    @cached_property
    def has_liked(self) -> np.ndarray:
        """``(n_users,)`` bool: whether a user has at least one positive interaction.

        A known user without one (every rating below the threshold) has no taste evidence: routing
        scores them like an unknown user, minus what they have seen.
        """
        if self.positive is None:
            out = np.diff(self.indptr) > 0
        else:
            out = np.bincount(self.entry_users()[self.positive], minlength=self.n_users) > 0
        out.setflags(write=False)
        return out

    @cached_property
    def newest_positive_seconds(self) -> np.ndarray:
        """``(n_users,)`` float64 Unix seconds of each user's newest positive (``-inf``: none, or
        no timestamps): the stale gate's clock (:class:`~recommender.scoring.HybridConfig`)."""
        out = np.full(self.n_users, -np.inf, dtype=np.float64)
        if self.seconds is not None and self.seconds.size:
            keep = self.positive_mask()
            np.maximum.at(out, self.entry_users()[keep], np.asarray(self.seconds)[keep])
        out.setflags(write=False)
        return out

    def segment(self, row: int) -> str:
        """Routing segment of user row ``row`` (-1 = never seen).

        ``trainable`` with a CF row; ``cold`` with positive history but no CF row; ``unknown`` for
        a user never seen *or* seen only with ratings below the positive threshold (nothing to
        learn taste from: popularity/quality, their seen items still excluded).
        """
        if row < 0:
            return V.SEGMENT_UNKNOWN
        if self.cf_rows[row] >= 0:
            return V.SEGMENT_TRAINABLE
        return V.SEGMENT_COLD if self.has_liked[row] else V.SEGMENT_UNKNOWN

    def items(self, row: int) -> np.ndarray:
        """Item indices of user row ``row`` (a read-only view)."""
        return self.indices[self.indptr[row] : self.indptr[row + 1]]

    def liked(self, row: int) -> np.ndarray:
        """Positive item indices of user row ``row``, in time order: the history that is scored."""
        start, end = self.indptr[row : row + 2]
        items = self.indices[start:end]
        if self.positive is None:
            return items
        return items[self.positive[start:end]]

    def seen_coordinates(self, rows: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """(batch positions, item indices) of every seen item of ``rows`` (-1 = unknown user)."""
        positions: list[np.ndarray] = []
        items: list[np.ndarray] = []
        for position, row in enumerate(rows):
            if row < 0:
                continue
            seen = self.items(row)
            positions.append(np.full(len(seen), position, dtype=np.int64))
            items.append(seen)
        if not items:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        return np.concatenate(positions), np.concatenate(items)

    def user_items(self, n_items: int) -> sp.csr_matrix:
        """The binary user×item matrix (n_users, n_items) of the positive interactions."""
        users = self.entry_users()
        keep = self.positive_mask()
        data = np.ones(int(keep.sum()), dtype=np.float32)
        shape = (self.n_users, n_items)
        return sp.csr_matrix((data, (users[keep], self.indices[keep])), shape=shape)

    def sessions(self, n_items: int, gap_seconds: float) -> sp.csr_matrix | None:
        """Binary sessions × items of the positive interactions (None without timestamps)."""
        if self.seconds is None:
            return None
        keep = self.positive_mask()
        return session_items(
            self.entry_users()[keep], self.indices[keep], self.seconds[keep], n_items, gap_seconds
        )

    def entry_users(self) -> np.ndarray:
        """``(nnz,)`` user row of each entry of ``indices``."""
        return np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))

    def positive_mask(self) -> np.ndarray:
        """``(nnz,)`` bool: which entries are positive interactions (all when not recorded)."""
        if self.positive is None:
            return np.ones(len(self.indices), dtype=bool)
        return self.positive

    def most_active(self, count: int) -> np.ndarray:
        """Rows of the ``count`` users with the longest histories, longest first, ties by row."""
        lengths = np.diff(self.indptr)
        order = np.argsort(-lengths, kind="stable")
        return order[:count]

    @classmethod
    def from_interactions(
        cls,
        interactions: pd.DataFrame,
        user_ids: Sequence[str],
        item_index: Mapping[str, int],
        trainable_user_ids: Sequence[str],
    ) -> UserHistories:
        """Build from ``interactions.parquet`` (all splits) and the processed mappings.

        Raises ModelLoadError when an interaction names a user or product missing from the mappings
        (the processed files come from different prepare runs).
        """
        users = [str(u) for u in user_ids]
        rows = pd.Index(users, dtype=object).get_indexer(
            interactions[V.USER_ID].astype(str).to_numpy(dtype=object)
        )
        items = pd.Index(list(item_index), dtype=object).get_indexer(
            interactions[V.PRODUCT_ID].astype(str).to_numpy(dtype=object)
        )
        if (rows < 0).any() or (items < 0).any():
            raise ModelLoadError(
                f"{int((rows < 0).sum())} interactions name users and {int((items < 0).sum())} "
                "name products missing from the processed mappings. "
                "Re-run `python -m recommender prepare`."
            )
        items = np.fromiter(item_index.values(), dtype=np.int64, count=len(item_index))[items]
        if V.TIMESTAMP in interactions.columns:
            seconds = unix_seconds(interactions)
            order = np.lexsort((seconds, rows))
            seconds = seconds[order]
        else:
            order = np.argsort(rows, kind="stable")
            seconds = None
        positive = None
        if V.IS_POSITIVE in interactions.columns:
            positive = interactions[V.IS_POSITIVE].fillna(False).astype(bool).to_numpy()[order]
        rows, items = rows[order], items[order]
        # a (user, product) pair once, at its first time; the mask keeps each row in time order
        _, first = np.unique(rows.astype(np.int64) * len(item_index) + items, return_index=True)
        keep = np.zeros(len(rows), dtype=bool)
        keep[first] = True
        rows, items = rows[keep], items[keep]
        seconds = None if seconds is None else seconds[keep]
        positive = None if positive is None else positive[keep]
        indptr = np.zeros(len(users) + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=len(users)), out=indptr[1:])
        cf_index = {str(u): i for i, u in enumerate(trainable_user_ids)}
        cf_rows = np.array([cf_index.get(u, -1) for u in users], dtype=np.int32)
        missing = set(cf_index) - set(users)
        if missing:
            raise ModelLoadError(
                f"{len(missing)} trainable users (e.g. {sorted(missing)[0]!r}) are not known "
                "users. "
                "Re-run `python -m recommender prepare`."
            )
        indices = items.astype(np.int32)
        for array in (indptr, indices, cf_rows, seconds, positive):
            if array is not None:
                array.setflags(write=False)
        return cls(
            user_ids=tuple(users),
            index=dict(zip(users, range(len(users)), strict=True)),
            indptr=indptr,
            indices=indices,
            cf_rows=cf_rows,
            seconds=seconds,
            positive=positive,
        )
