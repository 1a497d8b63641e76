"""An approximate-nearest-neighbour index over one item-vector matrix (embeddings, CF factors).

Why usearch (HNSW): it writes one file that :meth:`VectorIndex.open` memory-maps read-only
(``Index.restore(path, view=True)``: the graph and vectors are page-cache pages every worker of a
host shares). faiss-cpu 1.15 searched ~2× faster at equal recall on the 50K × 512 demo
embeddings, but ``IO_FLAG_MMAP`` does not map an ``IndexHNSWFlat`` (the 116 MB file is read into
private memory of each worker), and hnswlib has neither a map nor a release since 2023
(DEPLOYMENT_OPTIMIZATION.md §11.2 has the measurements).

Keys are the item indices ``0..n-1``. A build with ``threads=1`` inserts in index order and gives
the same file for the same vectors and settings (a test checks it); more threads build faster but
the graph then depends on thread timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

METRIC_INNER_PRODUCT = "ip"  # embeddings are L2-normalised: inner product = cosine


@dataclass(frozen=True)
class IndexParams:
    """HNSW settings of one index: graph degree, build and search beam widths, stored scalar
    type (``f16`` halves the file; recall on the demo embeddings as f32, §11.2)."""

    connectivity: int = 16
    expansion_add: int = 128
    expansion_search: int = 128
    dtype: str = "f16"

    def to_dict(self) -> dict[str, Any]:
        return {
            "connectivity": self.connectivity,
            "expansion_add": self.expansion_add,
            "expansion_search": self.expansion_search,
            "dtype": self.dtype,
        }


class VectorIndex:
    """Top-``k`` inner-product search over ``n`` item vectors ``(n, d)``; read-only once opened."""

    def __init__(self, index: Any, n_items: int, params: IndexParams) -> None:
        self._index = index
        self.n_items = int(n_items)
        self.params = params

    @property
    def ndim(self) -> int:
        return int(self._index.ndim)

    @classmethod
    def build(cls, vectors: np.ndarray, params: IndexParams, threads: int = 1) -> VectorIndex:
        """Insert every row of ``vectors`` ``(n, d)`` (key = row index)."""
        from usearch.index import Index

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index = Index(
            ndim=int(vectors.shape[1]),
            metric=METRIC_INNER_PRODUCT,
            dtype=params.dtype,
            connectivity=params.connectivity,
            expansion_add=params.expansion_add,
            expansion_search=params.expansion_search,
        )
        if len(vectors):
            index.add(np.arange(len(vectors), dtype=np.uint64), vectors, threads=max(1, threads))
        return cls(index, len(vectors), params)

    def save(self, path: Path) -> None:
        """Write the index to ``path`` (callers write into a staging directory, then rename)."""
        self._index.save(str(path))

    @classmethod
    def open(cls, path: Path, params: IndexParams) -> VectorIndex:
        """Memory-map ``path`` read-only (shared by every process that opens it); raises
        ``ValueError``/``RuntimeError``/``OSError`` when it is not a readable index."""
        from usearch.index import Index

        index = Index.restore(str(path), view=True)
        if index is None:
            raise ValueError(f"{path} is not a usearch index")
        index.expansion_search = params.expansion_search  # type: ignore[misc]  # has a setter
        return cls(index, len(index), params)

    def search(self, queries: np.ndarray, count: int, threads: int = 1) -> list[np.ndarray]:
        """Per query row of ``queries`` ``(b, d)``: the ``count`` (or fewer) items of largest
        inner product, as int64 item indices. ``threads``: the queries of a batch searched on
        that many threads (each query's search is the same; a request is one query)."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        if not self.n_items or not len(queries):
            return [np.zeros(0, dtype=np.int64) for _ in range(len(queries))]
        count = min(count, self.n_items)
        if len(queries) == 1:  # usearch answers one query with Matches (no counts)
            return [np.asarray(self._index.search(queries[0], count).keys, dtype=np.int64)]
        found = self._index.search(queries, count, threads=max(1, threads))
        keys = np.asarray(found.keys).astype(np.int64, copy=False)
        counts = np.asarray(found.counts)
        return [keys[row, : int(counts[row])] for row in range(len(queries))]

    def neighbour_table(self, vectors: np.ndarray, count: int, threads: int = 1) -> np.ndarray:
        """``(len(vectors), k)`` int32: each row's top ``k = min(count, n_items)`` items, best
        first (searched in blocks of 4,096 rows). A row with fewer matches is padded with its
        own best item, so every entry is a valid item index."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        count = min(count, self.n_items)
        out = np.zeros((len(vectors), count), dtype=np.int32)
        if not count:
            return out
        for start in range(0, len(vectors), 4096):
            block = vectors[start : start + 4096]
            found = self._index.search(block, count, threads=max(1, threads))
            keys = np.asarray(found.keys).astype(np.int64, copy=False).reshape(len(block), -1)
            counts = np.asarray(found.counts).reshape(-1)
            short = np.arange(count)[None, :] >= counts[:, None]
            keys = np.where(short, keys[:, :1], keys[:, :count])
            out[start : start + len(block)] = keys
        return out
