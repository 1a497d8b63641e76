"""The ANN indexes of a model's candidate stage, stored beside its serving arrays.

Layout: ``<serving_arrays>/<model_id>/ann/{content.usearch, cf.usearch, manifest.json}``
(and ``content_neighbours.npy`` + ``.json``: each item's content top-k, searched once on the
content index, so that a request reads its history items' rows instead of searching), written
through :func:`~recommender.storage.staged_directory` (all files appear together) by
``build`` or by the first worker that finds none, under the serving arrays' lock. Every worker
memory-maps the files read-only (:meth:`VectorIndex.open`), so N workers share one copy.
The manifest holds the key (the serving arrays' key, the index settings) and each file's
sha256. A set that is missing, stale or corrupt is rebuilt; if that fails too the model is
served exactly (never an exception: the candidate stage is an optimisation).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import CandidateSettings
from recommender.scoring import CandidateSearch, IndexParams, ScoringModel, VectorIndex
from recommender.scoring.candidates import (
    content_neighbour_table,
    index_params,
    indexed_vectors,
)
from recommender.serving.array_store import lock_path
from recommender.storage import (
    atomic_save_npy,
    atomic_write_json,
    file_lock,
    sha256_file,
    staged_directory,
)

logger = logging.getLogger(__name__)

ANN_DIR = "ann"
MANIFEST_FILE = "manifest.json"
NEIGHBOURS_FILE = "content_neighbours.npy"  # (n, k) int32 (CandidateSearch.content_neighbours)
NEIGHBOURS_META = "content_neighbours.json"  # its key (index digest, k, expansion) and sha256
FORMAT_VERSION = 1


def _key(arrays_key: Mapping[str, Any], settings: CandidateSettings, names: list[str]) -> dict:
    params = index_params(settings).to_dict()
    params.pop("expansion_search")  # a search setting: the same file serves any value
    return {"arrays": dict(arrays_key), "index": params, "indexes": sorted(names)}


def _read(directory: Path, key: Mapping[str, Any], params: IndexParams) -> dict[str, VectorIndex]:
    """The indexes of ``directory`` if stored for ``key``; ``ValueError``/``OSError`` otherwise."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT_VERSION or manifest.get("key") != json.loads(
        json.dumps(dict(key), default=str)
    ):
        raise ValueError("stored for another model, data or index settings")
    out = {}
    for name, digest in manifest["files"].items():
        path = directory / f"{name}.usearch"
        if sha256_file(path) != digest:
            raise ValueError(f"{path} does not match its recorded sha256")
        out[name] = VectorIndex.open(path, params)
    return out


def _write(directory: Path, indexes: Mapping[str, VectorIndex], key: Mapping[str, Any]) -> None:
    with staged_directory(directory) as stage:
        files = {}
        for name, index in indexes.items():
            path = stage / f"{name}.usearch"
            index.save(path)
            files[name] = sha256_file(path)
        atomic_write_json(
            stage / MANIFEST_FILE, {"format": FORMAT_VERSION, "key": dict(key), "files": files}
        )


def candidate_search(
    arrays_directory: Path,
    arrays_key: Mapping[str, Any],
    model: ScoringModel,
    settings: CandidateSettings,
) -> CandidateSearch | None:
    """The model's :class:`CandidateSearch` when ``settings`` enable it for its catalogue:
    read (memory-mapped), else built under the serving arrays' lock and stored; None = exact."""
    if not settings.enabled(model.n_items):
        return None
    vectors = indexed_vectors(model, settings)
    if not vectors:
        return None
    directory = arrays_directory / ANN_DIR
    key = _key(arrays_key, settings, list(vectors))
    params = index_params(settings)
    indexes: dict[str, VectorIndex] | None = None
    try:
        indexes = _read(directory, key, params)
    except FileNotFoundError:
        pass
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        logger.warning("ANN indexes in %s are unusable (%s): rebuilding them", directory, exc)
    if indexes is None:
        indexes = _build_stored(directory, key, params, vectors, settings.build_threads)
    if indexes is None:
        return None
    search = CandidateSearch(
        content=indexes.get(V.SIGNAL_CONTENT),
        cf=indexes.get(V.SIGNAL_CF),
        per_source=settings.per_source,
        per_signal=tuple(sorted(settings.per_signal.items())),
    )
    try:
        embedding_dim = None if model.embeddings is None else int(model.embeddings.shape[1])
        search.check(model.n_items, embedding_dim, int(model.item_factors.shape[1]))
    except ValueError as exc:
        logger.warning("ANN indexes in %s do not fit the model (%s): exact scoring", directory, exc)
        return None
    if search.content is not None and settings.content_neighbours:
        table = _neighbour_table(directory, search, vectors[V.SIGNAL_CONTENT], settings)
        if table is not None:
            search = dataclasses.replace(search, content_neighbours=table)
    return search


def _neighbour_key(directory: Path, search: CandidateSearch, settings: CandidateSettings) -> dict:
    manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    return {
        "format": FORMAT_VERSION,
        "content": manifest["files"][V.SIGNAL_CONTENT],  # the index the table was searched on
        "k": min(search.size(V.SIGNAL_CONTENT), search.n_indexed),
        "expansion_search": settings.expansion_search,
    }


def _read_table(directory: Path, key: Mapping[str, Any]) -> np.ndarray:
    meta = json.loads((directory / NEIGHBOURS_META).read_text(encoding="utf-8"))
    if meta.get("key") != dict(key):
        raise ValueError("searched with other settings or on another index")
    path = directory / NEIGHBOURS_FILE
    if sha256_file(path) != meta.get("sha256"):
        raise ValueError(f"{path} does not match its recorded sha256")
    table = np.load(path, mmap_mode="r")
    if table.dtype != np.int32 or table.ndim != 2 or table.shape[1] != key["k"]:
        raise ValueError(f"{path} holds {table.dtype} {table.shape}")
    return table


def _neighbour_table(
    directory: Path, search: CandidateSearch, embeddings: np.ndarray, settings: CandidateSettings
) -> np.ndarray | None:
    """The content neighbour table beside the indexes (memory-mapped), searched and stored by
    the first worker that finds none or a stale one; None (a search per request) if that fails."""
    try:
        key = _neighbour_key(directory, search, settings)
        try:
            return _read_table(directory, key)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("content neighbours in %s unusable (%s): recomputing", directory, exc)
        with file_lock(lock_path(directory.parent)):
            try:
                return _read_table(directory, key)  # another worker may have written it
            except (OSError, ValueError, KeyError, TypeError):
                pass
            logger.info("searching the content neighbours of %d items", search.n_indexed)
            table = content_neighbour_table(search, embeddings, settings)
            atomic_save_npy(directory / NEIGHBOURS_FILE, table)
            digest = sha256_file(directory / NEIGHBOURS_FILE)
            atomic_write_json(directory / NEIGHBOURS_META, {"key": key, "sha256": digest})
        return _read_table(directory, key)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        logger.warning("no content neighbours (%s): content candidates are searched", exc)
        return None


def _build_stored(
    directory: Path,
    key: Mapping[str, Any],
    params: IndexParams,
    vectors: Mapping[str, np.ndarray],
    threads: int,
) -> dict[str, VectorIndex] | None:
    """Build the indexes (one worker at a time), store and map them; a worker that cannot store
    them keeps its private copy; None (exact scoring) when building fails."""
    built: dict[str, VectorIndex] | None = None
    try:
        with file_lock(lock_path(directory.parent)):
            try:
                return _read(directory, key, params)  # another worker may have written it
            except (OSError, ValueError, KeyError, TypeError, RuntimeError):
                pass
            logger.info("building the ANN indexes %s in %s", sorted(vectors), directory)
            built = {name: VectorIndex.build(m, params, threads) for name, m in vectors.items()}
            _write(directory, built, key)
        return _read(directory, key, params)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        if built is not None:
            logger.warning("cannot store the ANN indexes in %s (%s): private copy", directory, exc)
            return built
        logger.warning("cannot build the ANN indexes (%s): the model is scored exactly", exc)
        return None
