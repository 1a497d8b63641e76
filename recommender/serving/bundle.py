"""One immutable bundle per model version: everything a request needs, loaded once.

:func:`load_bundle` reads the registry's current model, the processed data and the product
embeddings, checks they belong together (data version, embedding version, item order, factor
shapes) and precomputes what requests index: the :class:`~recommender.scoring.ScoringModel`
(factors, item-kNN similarity and trending popularity from the positive interactions of the full
history, quality, embeddings), the catalogue (records, filter masks, prices), every user's
history, and the unknown-user scores.
The large derived arrays (histories, item-kNN, aligned embeddings, unit factors, MMR cosine) are
computed once per model and data version and memory-mapped from :mod:`.array_store`, so the
workers of a host share them; a failed check raises :class:`~recommender.errors.ModelLoadError`
saying what to rebuild.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.config.training import ItemKNNParams
from recommender.data.processed import load_processed
from recommender.errors import InvalidDataError, InvalidRequestError, ModelLoadError, RecsysError
from recommender.scoring import (
    HybridConfig,
    PopularityHistory,
    Refold,
    ScoringModel,
    fit_item_knn,
    popularity_scores,
    quality_scores,
    score_users,
    with_candidates,
    with_popularity,
)
from recommender.serving.array_store import (
    StoredArrays,
    arrays_dir,
    lock_path,
    read_arrays,
    write_arrays,
)
from recommender.serving.catalogue import Catalogue
from recommender.serving.embedding_file import read_embeddings
from recommender.serving.histories import UserHistories, UserIds, UserIndex, encoded_ids
from recommender.storage import file_lock

logger = logging.getLogger(__name__)

# item-kNN settings of a model whose metadata lacks some: training's defaults
DEFAULT_KNN = ItemKNNParams().model_dump()
MAX_PRECOMPUTED_COSINE = 4000  # (n, n) float32 cosine: 64 MB at this size


@dataclass(frozen=True)
class ModelBundle:
    """Read-only serving state of one model version (never mutated after :func:`load_bundle`).

    Attributes:
        model: the scoring arrays shared with evaluation.
        catalogue: products, response records, filter masks.
        histories: known users' full histories and CF rows.
        hybrid: default weights per segment (the model's tuned ones unless config overrides).
        info: model id/type, factors, created/loaded time, data/embedding versions, metrics.
        item_unit_factors: ``(n, d)`` L2-normalised item factors (cosine for similar items).
        has_interactions: ``(n,)`` bool, products anyone interacted with (CF neighbours exist).
        popular_order: item indices, most popular first.
        unknown_scores: ``(n,)`` default hybrid scores of a user without history.
        unknown_order: item indices by (unknown score desc, index asc).
        item_cosine: ``(n, n)`` float32 embedding cosine for MMR, precomputed when the catalogue
            has at most :data:`MAX_PRECOMPUTED_COSINE` products (16 MB at 2,000), else ``None``.
        marker: the registry marker this bundle was loaded at.
        stale_model: ``model`` with the stale gate's popularity (``hybrid.stale_after_hours``),
            for users whose newest positive is older than the gate; None without a gate.
    """

    model: ScoringModel
    catalogue: Catalogue
    histories: UserHistories
    hybrid: HybridConfig
    info: dict[str, Any]
    item_unit_factors: np.ndarray
    has_interactions: np.ndarray
    popular_order: np.ndarray
    unknown_scores: np.ndarray
    unknown_order: np.ndarray
    item_cosine: np.ndarray | None
    marker: str | None
    stale_model: ScoringModel | None = None

    @property
    def model_id(self) -> str:
        return str(self.info["model_id"])

    @property
    def n_items(self) -> int:
        return self.catalogue.size


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0).astype(np.float32)


def _cosine(embeddings: np.ndarray) -> np.ndarray:
    """``(n, n)`` float32 cosine of L2-normalised embeddings, summed in float64: products with
    equal embeddings get exactly equal cosines (a float32 product may differ in the last bit
    between tiles), which keeps ties tied for rank normalisation and MMR."""
    unit = embeddings.astype(np.float64)
    return np.ascontiguousarray(unit @ unit.T, dtype=np.float32)


def _similarity_vectors(item_factors: np.ndarray, item_item: np.ndarray | None) -> np.ndarray:
    """Item vectors for ``cf`` similar items: the factors, or EASE's B rows (small catalogues)."""
    if item_item is None or item_item.shape[0] > MAX_PRECOMPUTED_COSINE:
        return item_factors
    return np.asarray(item_item, dtype=np.float32)


def _read_embeddings(path: Path) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """The .pt without torch when possible (see :mod:`.embedding_file`), else the torch loader."""
    quick = read_embeddings(path)
    if quick is not None:
        return quick
    from recommender.embeddings.store import load_embeddings

    try:
        store = load_embeddings(path)
    except InvalidDataError as exc:
        raise ModelLoadError(str(exc)) from exc
    return store.embeddings, store.product_ids, store.metadata


def _embeddings(
    processed_dir: Path, item_ids: tuple[str, ...], expected_version: str | None
) -> tuple[np.ndarray, dict[str, Any]]:
    path = processed_dir / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    matrix, product_ids, metadata = _read_embeddings(path)
    version = metadata.get("embedding_version")
    if expected_version and version != expected_version:
        raise ModelLoadError(
            f"{path} has embedding_version {version} but the current model was trained with "
            f"{expected_version}. Re-run `python -m recommender build` (or promote a model trained "
            "on these embeddings) so the model and its embeddings match."
        )
    index = {pid: i for i, pid in enumerate(product_ids)}
    missing = [pid for pid in item_ids if pid not in index]
    if missing or len(index) != len(item_ids):
        raise ModelLoadError(
            f"{path} covers {len(index)} products, the catalogue {len(item_ids)} "
            f"({len(missing)} without an embedding, e.g. {missing[:3]}). "
            "Re-run `python -m recommender embed`."
        )
    rows = np.fromiter((index[pid] for pid in item_ids), dtype=np.int64, count=len(item_ids))
    return np.ascontiguousarray(matrix[rows], dtype=np.float32), metadata


def _sample_users(histories: UserHistories, count: int = 5) -> dict[str, list[str]]:
    """A few real ids per segment, most active first: for smoke tests and API docs."""
    order = histories.most_active(histories.n_users)
    trainable = histories.cf_rows[order] >= 0
    cold = ~trainable & histories.has_liked[order]  # no positive interaction: routed as unknown
    return {
        "trainable": [histories.user_ids[r] for r in order[trainable][:count]],
        "cold": [histories.user_ids[r] for r in order[cold][:count]],
    }


def hybrid_config(settings: ServingSettings, metadata: Mapping[str, Any]) -> HybridConfig:
    """The model's tuned hybrid, with ``rerank.weights`` from config replacing the segments it
    names (ModelLoadError when those weights are invalid)."""
    tuned = HybridConfig.from_dict(metadata.get("hybrid"))
    if settings.rerank.weights is None:
        return tuned
    try:
        return dataclasses.replace(
            tuned,
            weights={**tuned.weights, **{k: dict(v) for k, v in settings.rerank.weights.items()}},
        )
    except InvalidRequestError as exc:
        raise ModelLoadError(f"config rerank.weights is invalid: {exc}") from exc


def load_bundle(settings: ServingSettings, model_id: str | None = None) -> ModelBundle:
    """Build the bundle of the registry's current model (or ``model_id``) from settings' paths.

    Raises:
        ModelLoadError: no current model, a missing/corrupt artifact, or a data/embedding version
            mismatch between the model and the processed data.
    """
    from recommender.registry import Registry

    started = time.perf_counter()
    processed_dir = Path(settings.paths.processed_dir)
    registry = Registry(settings.paths.registry_dir)
    try:
        marker = registry.current_marker()
        if marker is None and model_id is None:
            raise ModelLoadError(
                f"no current model in the registry at {settings.paths.registry_dir}. Run "
                "`python -m recommender build --source demo --input data/raw/demo` (or train + "
                "promote) and reload."
            )
        processed = load_processed(processed_dir, interactions=False)
        loaded = registry.load(model_id, expected_data_version=processed.data_version)
    except ModelLoadError:
        raise
    except RecsysError as exc:
        raise ModelLoadError(str(exc)) from exc
    metadata = dict(loaded.metadata)
    if metadata.get("data_version") not in (None, processed.data_version):
        raise ModelLoadError(
            f"model {metadata.get('model_id')} was trained on data {metadata.get('data_version')} "
            f"but {processed_dir} holds {processed.data_version}. "
            "Rebuild, or promote a model trained on this data."
        )
    metadata.setdefault("model_id", getattr(loaded.record, "model_id", "unknown"))
    catalogue = Catalogue.from_products(processed.products)
    n = catalogue.size
    item_factors = loaded.item_factors
    user_factors = loaded.user_factors
    if item_factors.shape[0] != n or user_factors.shape[0] != len(processed.trainable_user_ids):
        raise ModelLoadError(
            f"model {metadata.get('model_id')} factors {user_factors.shape}/{item_factors.shape} "
            "do "
            f"not match {len(processed.trainable_user_ids)} trainable users × {n} products in "
            f"{processed_dir}. Rebuild the model on this data."
        )
    similarity_vectors = _similarity_vectors(item_factors, loaded.item_item)
    stored = serving_arrays(processed_dir, catalogue, similarity_vectors, metadata)
    histories = _histories(stored, processed.user_ids)
    bundle = build_bundle(
        catalogue,
        histories,
        item_factors,
        user_factors,
        stored.get("embeddings"),
        metadata,
        hybrid_config(settings, metadata),
        marker=marker,
        data_version=processed.data_version,
        embedding_meta=stored.info.get("embedding_meta"),
        precomputed=stored,
        item_item=loaded.item_item,
    )
    bundle = _with_candidate_stage(bundle, processed_dir, metadata, settings)
    _materialise(bundle)
    del processed, loaded
    _release_reader_memory()
    bundle.info["load_seconds"] = round(time.perf_counter() - started, 3)
    logger.info(
        "loaded model %s (%s, %d users, %d products) in %.2fs",
        bundle.model_id,
        bundle.info["model_type"],
        histories.n_users,
        n,
        bundle.info["load_seconds"],
    )
    return bundle


def _with_candidate_stage(
    bundle: ModelBundle, processed_dir: Path, metadata: Mapping[str, Any], settings: ServingSettings
) -> ModelBundle:
    """``bundle`` scored through the ANN candidate stage when ``candidates`` enables it for its
    catalogue (:mod:`.candidate_index`); unchanged (exact) otherwise or when no index is usable."""
    from recommender.serving.candidate_index import candidate_search

    key = _arrays_key(processed_dir, metadata, bundle.n_items)
    directory = arrays_dir(processed_dir, bundle.model_id)
    search = candidate_search(directory, key, bundle.model, settings.candidates)
    bundle.info["candidates"] = "exact" if search is None else "ann"
    if search is None:
        return bundle
    stale = bundle.stale_model
    return dataclasses.replace(
        bundle,
        model=with_candidates(bundle.model, search),
        stale_model=None if stale is None else with_candidates(stale, search),
    )


def _materialise(bundle: ModelBundle) -> None:
    """Compute now the arrays requests would otherwise compute on their first use: under
    gunicorn's preloading master (``service/preload.py``) they are then shared by every worker
    instead of computed in each (the transposed item factors: 36 MB at 50K products), and the
    first request does not wait for them."""
    for model in (bundle.model, bundle.stale_model):
        if model is not None and model.item_factors.shape[1]:
            model.item_factors_t  # noqa: B018 - a cached property, shared by derived models
    if bundle.stale_model is not None:
        bundle.histories.newest_positive_seconds  # noqa: B018 - the stale gate's clock


def _release_reader_memory() -> None:
    """Hand pyarrow's freed buffers back to the OS after the processed files were read.

    Why: pyarrow's allocator (mimalloc) keeps the buffers of every table it has read for reuse,
    and serving reads parquet only at load: on the 50K-product catalogue ~150 MB of private dirty
    memory stayed in every worker after the products table was freed (measured with
    ``/proc/self/smaps_rollup``), which memory-mapping the arrays cannot share.
    """
    import pyarrow as pa

    pa.default_memory_pool().release_unused()


def store_serving_arrays(
    processed_dir: str | Path, registry_dir: str | Path, model_id: str | None = None
) -> Path:
    """Compute and store the memory-mapped arrays of the current model (or ``model_id``) now, at
    build time, so the first serving worker does not; returns their directory."""
    settings = ServingSettings.model_validate(
        {"paths": {"processed_dir": str(processed_dir), "registry_dir": str(registry_dir)}}
    )
    bundle = load_bundle(settings, model_id)
    return arrays_dir(Path(processed_dir), bundle.model_id)


HISTORY_ARRAYS = ("indptr", "indices", "cf_rows", "seconds", "positive")


def _arrays_key(processed_dir: Path, metadata: Mapping[str, Any], n_items: int) -> dict[str, Any]:
    """What the stored arrays depend on: the model (its item-kNN and popularity settings), the
    processed data, the embeddings file as it is now, the format and the MMR cosine limit."""
    embeddings = processed_dir / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE
    try:
        stat = embeddings.stat()
        embeddings_file: list[int] | None = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        embeddings_file = None
    return {
        "model_id": str(metadata.get("model_id")),
        "data_version": metadata.get("data_version"),
        "embedding_version": metadata.get("embedding_version"),
        "embeddings_file": embeddings_file,
        "item_knn": {**DEFAULT_KNN, **(metadata.get("item_knn") or {})},
        "popularity": metadata.get("popularity"),
        "n_items": n_items,
        "max_precomputed_cosine": MAX_PRECOMPUTED_COSINE,
    }


def serving_arrays(
    processed_dir: Path,
    catalogue: Catalogue,
    item_factors: np.ndarray,
    metadata: Mapping[str, Any],
) -> StoredArrays:
    """The memory-mapped derived arrays of this model over ``processed_dir``: read when a set was
    stored for the same key, else computed (one worker at a time, under a lock), stored and mapped.

    Reading ``interactions.parquet`` and the embeddings file happens only when computing. A set
    that cannot be written (read-only disk) is served from memory, with a warning.
    """
    directory = arrays_dir(processed_dir, str(metadata.get("model_id")))
    key = _arrays_key(processed_dir, metadata, catalogue.size)
    stored = read_arrays(directory, key)
    if stored is not None:
        return stored
    computed: StoredArrays | None = None
    try:
        with file_lock(lock_path(directory)):
            stored = read_arrays(directory, key)  # another worker may have written it meanwhile
            if stored is not None:
                return stored
            computed = _compute_arrays(processed_dir, catalogue, item_factors, metadata)
            write_arrays(directory, computed.arrays, key, computed.info)
    except OSError as exc:
        logger.warning(
            "cannot store the serving arrays in %s (%s): this worker keeps a private copy",
            directory,
            exc,
        )
        if computed is None:
            computed = _compute_arrays(processed_dir, catalogue, item_factors, metadata)
        return computed
    stored = read_arrays(directory, key)
    if stored is None:
        raise ModelLoadError(f"serving arrays written to {directory} do not read back. Rebuild.")
    logger.info("stored the serving arrays of model %s in %s", key["model_id"], directory)
    return stored


def _compute_arrays(
    processed_dir: Path,
    catalogue: Catalogue,
    item_factors: np.ndarray,
    metadata: Mapping[str, Any],
) -> StoredArrays:
    """Histories from ``interactions.parquet``, embeddings in catalogue order, then the derived
    arrays of :func:`derived_arrays`."""
    try:
        processed = load_processed(processed_dir)
    except RecsysError as exc:
        raise ModelLoadError(str(exc)) from exc
    embeddings, emb_meta = _embeddings(
        processed_dir, catalogue.item_ids, metadata.get("embedding_version")
    )
    histories = UserHistories.from_interactions(
        processed.interactions,
        processed.user_ids,
        processed.item_index,
        processed.trainable_user_ids,
    )
    arrays: dict[str, np.ndarray | None] = {
        f"history_{name}": getattr(histories, name) for name in HISTORY_ARRAYS
    }
    encoded = encoded_ids(histories.user_ids)
    index = UserIndex.of(encoded)
    arrays.update(user_ids=encoded, user_sorted_ids=index.sorted_ids, user_sorted_rows=index.rows)
    arrays.update(derived_arrays(catalogue, histories, item_factors, embeddings, metadata))
    return StoredArrays(arrays, {"embedding_meta": emb_meta})


def _histories(stored: StoredArrays, user_ids: list[str]) -> UserHistories:
    """Known users over the stored (memory-mapped) history arrays."""
    indptr = stored.need("history_indptr")
    if len(indptr) != len(user_ids) + 1:
        raise ModelLoadError(
            f"stored histories cover {len(indptr) - 1} users, the processed data "
            f"{len(user_ids)}. Rebuild."
        )
    encoded = stored.need("user_ids")
    if len(encoded) != len(user_ids) or (len(user_ids) and UserIds(encoded)[-1] != user_ids[-1]):
        raise ModelLoadError(
            "stored user ids differ from the processed user mapping. Rebuild."
        )  # pragma: no cover - the arrays' key includes the data version
    return UserHistories(
        user_ids=UserIds(encoded),
        index=UserIndex(stored.need("user_sorted_ids"), stored.need("user_sorted_rows")),
        indptr=indptr,
        indices=stored.need("history_indices"),
        cf_rows=stored.need("history_cf_rows"),
        seconds=stored.get("history_seconds"),
        positive=stored.get("history_positive"),
    )


def _popularity(
    histories: UserHistories, user_items: sp.csr_matrix, metadata: Mapping[str, Any]
) -> np.ndarray:
    """Popularity "now": decayed by the model's tuned half-life as of the newest interaction
    (evaluation scored it as of each request's time), all-time counts without timestamps."""
    half_life = (metadata.get("popularity") or {}).get("half_life_days")
    return popularity_now(histories, user_items, half_life)


def popularity_now(
    histories: UserHistories, user_items: sp.csr_matrix, half_life: float | None
) -> np.ndarray:
    """``(n,)`` popularity of the positives of ``histories`` with ``half_life`` days as of the
    newest interaction (all-time counts without timestamps)."""
    if histories.seconds is None or not histories.seconds.size:
        return popularity_scores(user_items)
    liked = histories.positive_mask()
    history = PopularityHistory.from_events(
        histories.indices[liked],
        histories.seconds[liked],
        user_items.shape[1],
        None if half_life is None else float(half_life),
    )
    return history.latest()


def derived_arrays(
    catalogue: Catalogue,
    histories: UserHistories,
    item_factors: np.ndarray,
    embeddings: np.ndarray | None,
    metadata: Mapping[str, Any],
) -> dict[str, np.ndarray | None]:
    """The large arrays :func:`build_bundle` derives from the history and the factors: item-kNN
    and popularity fitted on the positives of the full history (as training fits them on the
    positives of its splits), unit rows of ``item_factors`` (the vectors of `cf` similar items:
    EASE passes its B rows), the MMR cosine (small catalogues), embeddings."""
    n = catalogue.size
    user_items = histories.user_items(n)
    knn = {**DEFAULT_KNN, **(metadata.get("item_knn") or {})}
    similarity = sp.csr_matrix(
        fit_item_knn(
            user_items,
            int(knn["neighbours"]),
            float(knn["shrinkage"]),
            histories.sessions(n, float(knn["session_gap_hours"]) * 3600.0)
            if float(knn["session_weight"]) > 0
            else None,
            float(knn["session_weight"]),
        ),
        dtype=np.float32,
    )
    if embeddings is not None:
        embeddings = np.ascontiguousarray(embeddings, dtype=np.float32)
    return {
        "knn_data": similarity.data,
        "knn_indices": similarity.indices,
        "knn_indptr": similarity.indptr,
        "popularity": _popularity(histories, user_items, metadata),
        "has_interactions": np.diff(user_items.tocsc().indptr) > 0,
        "item_unit_factors": _unit_rows(np.asarray(item_factors, dtype=np.float32)),
        "embeddings": embeddings,
        "item_cosine": None
        if embeddings is None or n > MAX_PRECOMPUTED_COSINE
        else _cosine(embeddings),
    }


def build_bundle(
    catalogue: Catalogue,
    histories: UserHistories,
    item_factors: np.ndarray,
    user_factors: np.ndarray,
    embeddings: np.ndarray | None,
    metadata: Mapping[str, Any],
    hybrid: HybridConfig,
    marker: str | None = None,
    data_version: str | None = None,
    embedding_meta: Mapping[str, Any] | None = None,
    precomputed: StoredArrays | None = None,
    item_item: np.ndarray | None = None,
) -> ModelBundle:
    """Assemble a bundle from checked parts; the large derived arrays come from ``precomputed``
    (memory-mapped, see :func:`serving_arrays`) or are computed by :func:`derived_arrays`.

    ``embeddings`` rows and factor rows are in catalogue order; ``metadata`` is the model's
    ``metadata.json`` (``model_id``, ``model_type``, ``item_knn``, ``fold_in_regularization`` ...).
    ``item_item`` is EASE's ``(n, n)`` B (its factors have 0 columns): it scores the CF signal and,
    up to :data:`MAX_PRECOMPUTED_COSINE` items, its unit rows are the ``cf`` similar-items vectors.
    """
    n = catalogue.size
    emb_meta = dict(embedding_meta or {})
    knn = {**DEFAULT_KNN, **(metadata.get("item_knn") or {})}
    derived = (
        precomputed.arrays
        if precomputed is not None
        else derived_arrays(
            catalogue,
            histories,
            _similarity_vectors(item_factors, item_item),
            embeddings,
            metadata,
        )
    )
    embeddings = derived["embeddings"]
    popularity = _need(derived, "popularity")
    quality = quality_scores(*catalogue.ratings)
    cosine = derived["item_cosine"]
    model = ScoringModel.build(
        item_factors=item_factors,
        user_factors=user_factors,
        fold_in_regularization=float(metadata.get("fold_in_regularization", 1.0)),
        item_similarity=sp.csr_matrix(
            (
                _need(derived, "knn_data"),
                _need(derived, "knn_indices"),
                _need(derived, "knn_indptr"),
            ),
            shape=(n, n),
        ),
        embeddings=embeddings,
        popularity=popularity,
        quality=quality,
        item_cosine=None if cosine is None else _read_only(cosine),
        item_item=item_item,
        refold=Refold.from_dict(metadata.get("refold")),
    )
    unknown = score_users(
        model,
        V.SEGMENT_UNKNOWN,
        [np.zeros(0, dtype=np.int64)],
        hybrid.for_segment(V.SEGMENT_UNKNOWN),
        hybrid.normalisation,
    )[0]
    unknown_scores = np.round(unknown, V.SCORE_DECIMALS).astype(np.float32)
    stale = None
    if hybrid.stale_after_hours is not None and histories.seconds is not None:
        half_life = hybrid.stale_popularity_half_life_days
        stale_pop = popularity_now(histories, histories.user_items(n), half_life)
        stale = with_popularity(model, stale_pop)
    info = {
        "model_id": str(metadata.get("model_id", "unknown")),
        "model_type": metadata.get("model_type"),
        "factors": int(item_factors.shape[1]),
        "created_at": metadata.get("created_at"),
        "loaded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_version": data_version or metadata.get("data_version"),
        "embedding_version": emb_meta.get("embedding_version"),
        "embedding_model": emb_meta.get("model_name") or emb_meta.get("encoder"),
        "embedding_dim": None if embeddings is None else int(embeddings.shape[1]),
        "metrics": metadata.get("metrics", {}),
        "hybrid": hybrid.to_dict(),
        "item_knn": knn,
        "popularity_half_life_days": (metadata.get("popularity") or {}).get("half_life_days"),
        # the build's live validation: fold a trainable user's CF vector in from the live history
        "live_fold_in": metadata.get("live_fold_in"),
        "refold": metadata.get("refold"),
        "n_users": histories.n_users,
        "n_trainable_users": histories.n_trainable,
        "n_items": n,
        "load_seconds": 0.0,
        "sample_user_ids": _sample_users(histories),
    }
    bundle = ModelBundle(
        model=model,
        catalogue=catalogue,
        histories=histories,
        hybrid=hybrid,
        info=info,
        item_unit_factors=_read_only(_need(derived, "item_unit_factors")),
        has_interactions=_read_only(_need(derived, "has_interactions")),
        popular_order=_read_only(np.lexsort((np.arange(n), -popularity))),
        unknown_scores=_read_only(unknown_scores),
        unknown_order=_read_only(np.lexsort((np.arange(n), -unknown_scores))),
        item_cosine=model.item_cosine,
        marker=marker,
        stale_model=stale,
    )
    return bundle


def _need(arrays: Mapping[str, np.ndarray | None], name: str) -> np.ndarray:
    array = arrays[name]
    if array is None:
        raise ModelLoadError(f"serving array {name} is missing. Rebuild the model.")
    return array
