"""One immutable bundle per model version: everything a request needs, loaded once.

:func:`load_bundle` reads the registry's current model, the processed data and the product
embeddings, checks they belong together (data version, embedding version, item order, factor
shapes) and precomputes what requests index: the :class:`~recommender.scoring.ScoringModel`
(factors, item-kNN similarity and trending popularity from the positive interactions of the full
history, quality, embeddings), the catalogue (records, filter masks, prices), every user's
history, and the unknown-user scores.
A failed check raises :class:`~recommender.errors.ModelLoadError` saying what to rebuild.
"""

from __future__ import annotations

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
    ScoringModel,
    fit_item_knn,
    popularity_scores,
    quality_scores,
    score_users,
)
from recommender.serving.catalogue import Catalogue
from recommender.serving.embedding_file import read_embeddings
from recommender.serving.histories import UserHistories

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
        return HybridConfig(
            weights={**tuned.weights, **{k: dict(v) for k, v in settings.rerank.weights.items()}},
            normalisation=tuned.normalisation,
            recency_decay=tuned.recency_decay,
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
        processed = load_processed(processed_dir)
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
    catalogue = Catalogue.from_products(processed.products)
    n = catalogue.size
    item_factors = np.asarray(loaded.item_factors, dtype=np.float32)
    user_factors = np.asarray(loaded.user_factors, dtype=np.float32)
    if item_factors.shape[0] != n or user_factors.shape[0] != len(processed.trainable_user_ids):
        raise ModelLoadError(
            f"model {metadata.get('model_id')} factors {user_factors.shape}/{item_factors.shape} "
            "do "
            f"not match {len(processed.trainable_user_ids)} trainable users × {n} products in "
            f"{processed_dir}. Rebuild the model on this data."
        )
    embeddings, emb_meta = _embeddings(
        processed_dir, catalogue.item_ids, metadata.get("embedding_version")
    )
    histories = UserHistories.from_interactions(
        processed.interactions,
        processed.user_ids,
        processed.item_index,
        processed.trainable_user_ids,
    )
    metadata.setdefault("model_id", getattr(loaded.record, "model_id", "unknown"))
    bundle = build_bundle(
        catalogue,
        histories,
        item_factors,
        user_factors,
        embeddings,
        metadata,
        hybrid_config(settings, metadata),
        marker=marker,
        data_version=processed.data_version,
        embedding_meta=emb_meta,
        item_item=loaded.item_item,
    )
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


def _popularity(
    histories: UserHistories, user_items: sp.csr_matrix, metadata: Mapping[str, Any]
) -> np.ndarray:
    """Popularity "now": decayed by the model's tuned half-life as of the newest interaction
    (evaluation scored it as of each request's time), all-time counts without timestamps."""
    half_life = (metadata.get("popularity") or {}).get("half_life_days")
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
    item_item: np.ndarray | None = None,
) -> ModelBundle:
    """Assemble a bundle from checked parts: fits item-kNN and popularity on the positives of the
    full history (as training fits them on the positives of its splits).

    ``embeddings`` rows and factor rows are in catalogue order; ``metadata`` is the model's
    ``metadata.json`` (``model_id``, ``model_type``, ``item_knn``, ``fold_in_regularization`` ...).
    ``item_item`` is EASE's ``(n, n)`` B (its factors have 0 columns): it scores the CF signal and,
    up to :data:`MAX_PRECOMPUTED_COSINE` items, its unit rows are the ``cf`` similar-items vectors.
    """
    n = catalogue.size
    emb_meta = dict(embedding_meta or {})
    user_items = histories.user_items(n)
    knn = {**DEFAULT_KNN, **(metadata.get("item_knn") or {})}
    popularity = _popularity(histories, user_items, metadata)
    quality = quality_scores(
        np.array(
            [r[V.AVG_RATING] if r[V.AVG_RATING] is not None else np.nan for r in catalogue.records],
            dtype=np.float64,
        ),
        np.array([r[V.NUM_RATINGS] or 0 for r in catalogue.records], dtype=np.float64),
    )
    model = ScoringModel.build(
        item_factors=item_factors,
        user_factors=user_factors,
        fold_in_regularization=float(metadata.get("fold_in_regularization", 1.0)),
        item_similarity=fit_item_knn(
            user_items,
            int(knn["neighbours"]),
            float(knn["shrinkage"]),
            histories.sessions(n, float(knn["session_gap_hours"]) * 3600.0)
            if float(knn["session_weight"]) > 0
            else None,
            float(knn["session_weight"]),
        ),
        embeddings=embeddings,
        popularity=popularity,
        quality=quality,
        item_item=item_item,
    )
    unknown = score_users(
        model,
        V.SEGMENT_UNKNOWN,
        [np.zeros(0, dtype=np.int64)],
        hybrid.for_segment(V.SEGMENT_UNKNOWN),
        hybrid.normalisation,
    )[0]
    counts = np.diff(user_items.tocsc().indptr)
    unknown_scores = np.round(unknown, V.SCORE_DECIMALS).astype(np.float32)
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
        item_unit_factors=_read_only(_unit_rows(_similarity_vectors(item_factors, item_item))),
        has_interactions=_read_only(counts > 0),
        popular_order=_read_only(np.lexsort((np.arange(n), -popularity))),
        unknown_scores=_read_only(unknown_scores),
        unknown_order=_read_only(np.lexsort((np.arange(n), -unknown_scores))),
        item_cosine=None
        if embeddings is None or n > MAX_PRECOMPUTED_COSINE
        else _read_only(np.ascontiguousarray(embeddings @ embeddings.T)),
        marker=marker,
    )
    return bundle
