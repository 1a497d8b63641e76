"""The bundle's large read-only arrays as ``.npy`` files that every worker memory-maps.

A worker that computes item-kNN, aligns embeddings or decodes histories at start-up holds a private
copy of each result: N gunicorn workers hold N copies. Written once (at build time, or by the first
worker that finds none) and opened with ``np.load(mmap_mode="r")``, the same arrays are page-cache
pages that all workers on the host share, and a start-up no longer reads ``interactions.parquet``.

Layout: ``<processed_dir>/serving_arrays/<model_id>/{<name>.npy, manifest.json}``, written through
:func:`~recommender.storage.staged_directory` (all files appear together or not at all; a mapped
file of a replaced set stays valid for the worker that maps it). ``manifest.json`` holds the *key*
the arrays were computed for (model, data and embedding versions, item-kNN settings, format) and
each file's sha256, shape and dtype. :func:`read_arrays` answers ``None`` — recompute — for a set
that is missing, stale (another key) or corrupt (checksum, header or shape), never an exception:
a damaged cache must not keep a model from loading. Files are only ever replaced by rename, never
edited in place: a worker's map would see an in-place edit (and a truncation faults its reads).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.storage import atomic_save_npy, atomic_write_json, sha256_file, staged_directory

logger = logging.getLogger(__name__)

ARRAYS_DIR = "serving_arrays"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 2  # 2: user ids (row order, sorted + rows) for a shared id index


@dataclass(frozen=True)
class StoredArrays:
    """Read-only (memory-mapped) arrays by name (``None``: recorded as absent) and the JSON
    ``info`` written with them."""

    arrays: dict[str, np.ndarray | None]
    info: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> np.ndarray | None:
        return self.arrays[name]

    def need(self, name: str) -> np.ndarray:
        array = self.arrays[name]
        if array is None:
            raise KeyError(f"serving array {name} is absent")
        return array


def arrays_dir(processed_dir: str | Path, model_id: str) -> Path:
    """Where the arrays of ``model_id`` over the processed data in ``processed_dir`` live."""
    return Path(processed_dir) / ARRAYS_DIR / model_id


def lock_path(directory: Path) -> Path:
    """The lock file that serialises the workers that compute one set."""
    return directory.parent / f".{directory.name}.lock"


def write_arrays(
    directory: Path,
    arrays: Mapping[str, np.ndarray | None],
    key: Mapping[str, Any],
    info: Mapping[str, Any] | None = None,
) -> None:
    """Write ``arrays`` (``None`` entries are recorded as absent), ``key``, ``info`` and the
    checksums atomically."""
    files: dict[str, dict[str, Any] | None] = {}
    with staged_directory(directory) as stage:
        for name, array in arrays.items():
            if array is None:
                files[name] = None
                continue
            path = stage / f"{name}.npy"
            atomic_save_npy(path, array)
            files[name] = {
                "sha256": sha256_file(path),
                "shape": list(array.shape),
                "dtype": np.dtype(array.dtype).str,
            }
        atomic_write_json(
            stage / MANIFEST_FILE,
            {
                "format": FORMAT_VERSION,
                "key": dict(key),
                "info": dict(info or {}),
                "files": files,
            },
        )


def _map(path: Path, spec: Mapping[str, Any]) -> np.ndarray:
    """Memory-map one file (an empty array cannot be mapped: it is read) and check its header."""
    shape = tuple(int(s) for s in spec["shape"])
    if int(np.prod(shape)) == 0:
        array = np.load(path, allow_pickle=False)
    else:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    if array.shape != shape or array.dtype.str != spec["dtype"]:
        raise ValueError(f"{path} holds {array.dtype.str} {array.shape}, manifest {spec}")
    # a plain ndarray view of the map (same pages): indexing a np.memmap costs ~4 us of Python
    # (__getitem__ / __array_finalize__) against 0.5 us, and a request indexes a dozen of them
    return np.asarray(array)


def read_arrays(
    directory: Path, key: Mapping[str, Any], *, verify: bool = True
) -> StoredArrays | None:
    """The memory-mapped arrays of ``directory`` if they were computed for ``key``, else None.

    ``verify`` re-hashes every file against the manifest (the files are read once, into the page
    cache the maps then use); a mismatch is logged and answers None, so the caller recomputes.
    """
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        return None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION or manifest.get("key") != json.loads(
            json.dumps(dict(key), default=str)
        ):
            logger.info("serving arrays in %s are of another model or data: recomputing", directory)
            return None
        out: dict[str, np.ndarray | None] = {}
        for name, spec in manifest["files"].items():
            if spec is None:
                out[name] = None
                continue
            path = directory / f"{name}.npy"
            if verify and sha256_file(path) != spec["sha256"]:
                raise ValueError(f"{path} does not match its recorded sha256")
            out[name] = _map(path, spec)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        logger.warning(
            "serving arrays in %s are unreadable (%s): recomputing them; the model still loads",
            directory,
            exc,
        )
        return None
    return StoredArrays(out, dict(manifest.get("info") or {}))
