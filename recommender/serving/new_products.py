"""Products created by ``PUT /products`` after the model was built: recommendable at once.

The bundle is immutable, so new products live beside it in an *appended index space*: the
``k`` new products are items ``n .. n + k - 1`` after the model's ``n``. :class:`NewProducts`
(owned by :class:`~recommender.serving.live_state.LiveState`, used under its lock) registers
them on the write path (replay, tail, the PUT itself) and embeds their text once per product and
text change, with the model's own fitted encoder (:func:`bundle_embedder`). Each change commits
an immutable :class:`NewItems` snapshot holding everything the request path needs as arrays:

- the new products' own :class:`Catalogue` (records, filter masks, prices) and availability;
- their embeddings, and the model's arrays extended by ``k`` rows (zero item factors and
  item-kNN rows: no interaction evidence yet; the catalogue's no-rating quality prior);

:func:`live_model` turns a snapshot and live popularity into a :class:`ScoringModel` over
``n + k`` items, so every signal (content against the user's profile, live popularity) and
every path (hybrid, cold, unknown, batch, explain) scores new products with the same code as
known ones. :func:`eligibility` and :func:`content_neighbours` cover filters and
``/similar_items``. All numpy over arrays; no loop over items on the request path.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommender import vocabulary as V
from recommender.scoring import ScoringModel, normalise, quality_scores
from recommender.scoring.hybrid import NORMALISATIONS
from recommender.serving.bundle import ModelBundle
from recommender.serving.catalogue import Catalogue
from recommender.serving.filters import Filters, eligibility_mask
from recommender.storage import read_json
from recommender.text.product_text import record_text

log = logging.getLogger(__name__)

Embedder = Callable[[Sequence[str]], np.ndarray]
"""Product texts -> ``(len, e)`` float32 unit rows in the model's embedding space."""


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return (vector / norm if norm > 0 else vector).astype(np.float32)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


@dataclass(frozen=True)
class NewItems:
    """An immutable snapshot of the new products (items ``base .. base + k - 1``).

    ``model_parts``: the bundle's ScoringModel arrays extended by the ``k`` rows (see module
    doc), ready for :func:`live_model`; empty when ``k == 0``.
    """

    base: int
    version: int
    catalogue: Catalogue
    available: np.ndarray  # (k,) bool
    embeddings: np.ndarray | None  # (k, e) unit rows, None when the model has no embeddings
    model_parts: Mapping[str, Any] = field(default_factory=dict)

    @property
    def k(self) -> int:
        return self.catalogue.size

    def index_of(self, product_id: str) -> int | None:
        """The appended item index of ``product_id``, or None when it is not a new product."""
        slot = self.catalogue.index.get(product_id)
        return None if slot is None else self.base + slot

    def record(self, item: int) -> dict[str, Any]:
        return self.catalogue.records[item - self.base]


def _catalogue(records: Sequence[Mapping[str, Any]]) -> Catalogue:
    columns = (V.PRODUCT_ID, V.NAME, V.BRAND, V.CATEGORY, V.PRICE, V.SKIN_TYPES)
    frame = pd.DataFrame([{c: r.get(c) for c in columns} for r in records], columns=columns)
    return Catalogue.from_products(frame)


def empty_items(base: int) -> NewItems:
    return NewItems(
        base=base,
        version=0,
        catalogue=_catalogue([]),
        available=_frozen(np.zeros(0, dtype=bool)),
        embeddings=None,
    )


def product_text(fields: Mapping[str, Any]) -> str:
    """The embedded string of a PUT product, built as the model build builds it."""
    return record_text({c: fields.get(c) for c in (V.NAME, V.BRAND, V.CATEGORY, V.SKIN_TYPES)})


class NewProducts:
    """The registry behind :class:`NewItems` snapshots: at most ``capacity`` products.

    Not thread-safe on its own: :class:`LiveState` calls :meth:`upsert` and :meth:`commit`
    under its writer lock, and readers only take :attr:`snapshot`.
    """

    def __init__(self, bundle: ModelBundle, capacity: int, embed: Embedder | None) -> None:
        self.base = bundle.n_items
        self.capacity = int(capacity)
        self._model = bundle.model
        self._embed = embed if bundle.model.embeddings is not None else None
        self._ids: list[str] = []
        self._slot: dict[str, int] = {}
        self._records: list[dict[str, Any]] = []
        self._available: list[bool] = []
        self._texts: list[str | None] = []
        self._pending: set[int] = set()
        self._dirty = False
        embeddings = bundle.model.embeddings
        dim = 0 if embeddings is None else embeddings.shape[1]
        self._vectors = np.zeros((self.capacity, dim), dtype=np.float32)
        self._fallback = (
            None if embeddings is None or not len(embeddings) else _unit(embeddings.mean(axis=0))
        )
        self._quality = float(_no_rating_quality(bundle))
        self.rejected: set[str] = set()  # PUT products beyond capacity: remembered, not served
        self.snapshot = empty_items(self.base)

    def index_of(self, product_id: str) -> int | None:
        """The appended index of ``product_id`` (before or after commit), or None."""
        slot = self._slot.get(product_id)
        return None if slot is None else self.base + slot

    def upsert(self, product_id: str, record: Mapping[str, Any], available: bool) -> int | None:
        """Register or change a product (``record``: the response record); its index, or None
        when :attr:`capacity` products are already registered. Re-embeds on a text change."""
        slot = self._slot.get(product_id)
        if slot is None:
            if len(self._ids) >= self.capacity:
                if product_id not in self.rejected:
                    log.warning(
                        "new product %r not recommendable: %d new products already "
                        "(events.max_new_products); the next build folds it in",
                        product_id,
                        self.capacity,
                    )
                self.rejected.add(product_id)
                return None
            slot = len(self._ids)
            self._slot[product_id] = slot
            self._ids.append(product_id)
            self._records.append({})
            self._available.append(True)
            self._texts.append(None)
        text = product_text(record)
        if text != self._texts[slot]:
            self._texts[slot] = text
            self._pending.add(slot)
        self._records[slot] = {**record, V.PRODUCT_ID: product_id}
        self._available[slot] = bool(available)
        self._dirty = True
        return self.base + slot

    def commit(self, version: int) -> bool:
        """Embed what changed (one encoder call) and publish a new snapshot; False if nothing
        changed since the last commit."""
        if not self._dirty:
            return False
        self._embed_pending()
        k = len(self._ids)
        embeddings = None if self._model.embeddings is None else self._vectors[:k].copy()
        self.snapshot = NewItems(
            base=self.base,
            version=version,
            catalogue=_catalogue(self._records),
            available=_frozen(np.array(self._available, dtype=bool)),
            embeddings=None if embeddings is None else _frozen(embeddings),
            model_parts=self._model_parts(k, embeddings),
        )
        self._dirty = False
        return True

    def _embed_pending(self) -> None:
        slots = sorted(self._pending)
        self._pending.clear()
        if not slots or self._fallback is None:
            return
        vectors = np.zeros((len(slots), self._vectors.shape[1]), dtype=np.float32)
        texts = [self._texts[s] or "" for s in slots]
        if self._embed is not None:
            try:
                vectors = np.asarray(self._embed(texts), dtype=np.float32)
            except Exception:  # the write path must not stop on the encoder: no content signal
                log.exception("embedding %d new products failed; they get the centroid", len(slots))
            if vectors.shape != (len(slots), self._vectors.shape[1]):
                log.error("encoder gave %s for %d products: centroid", vectors.shape, len(slots))
                vectors = np.zeros((len(slots), self._vectors.shape[1]), dtype=np.float32)
        # as the build does: a text with nothing the encoder knows gets the catalogue centroid
        vectors[~np.any(vectors != 0, axis=1)] = self._fallback
        self._vectors[slots] = vectors

    def _model_parts(self, k: int, embeddings: np.ndarray | None) -> dict[str, Any]:
        if not k:
            return {}
        base = self._model
        n = base.n_items
        similarity = base.item_similarity.copy()
        similarity.resize((n + k, n + k))  # new products: no item-kNN evidence yet
        no_factors = np.zeros((k, base.item_factors.shape[1]), np.float32)
        parts: dict[str, Any] = {
            "item_factors": _frozen(np.vstack([base.item_factors, no_factors])),
            "item_similarity": sp.csr_matrix(similarity),
            "quality": _frozen(
                np.concatenate([base.quality, np.full(k, self._quality, dtype=np.float32)])
            ),
            # content from the profile product over the extended embeddings: the model's
            # (n, n) cosine has no rows for the new products
            "item_cosine": None,
        }
        if base.embeddings is not None and embeddings is not None:
            parts["embeddings"] = _frozen(np.vstack([base.embeddings, embeddings]))
        return parts


def _no_rating_quality(bundle: ModelBundle) -> float:
    """The quality the model gives a product without ratings (the catalogue's prior)."""
    ratings, counts = bundle.catalogue.ratings  # arrays: every worker walking the records
    # would copy the pages they lie on (service/preload.py)
    return float(quality_scores(np.append(ratings, np.nan), np.append(counts, 0.0))[-1])


def fit_length(vector: np.ndarray, size: int) -> np.ndarray:
    """``vector`` cut or zero-padded to ``size`` (popularity read beside a newer snapshot)."""
    if len(vector) == size:
        return vector
    if len(vector) > size:
        return vector[:size]
    return np.concatenate([vector, np.zeros(size - len(vector), dtype=vector.dtype)])


def live_model(base: ScoringModel, popularity: np.ndarray | None, items: NewItems) -> ScoringModel:
    """``base`` with live ``popularity`` (None: the model's) over its ``n`` items and the
    snapshot's new ones; static signals re-normalised over all of them."""
    size = base.n_items + items.k
    pop = fit_length(base.popularity if popularity is None else popularity, size)
    pop = np.ascontiguousarray(pop, dtype=np.float32)
    model = replace(base, popularity=pop, **items.model_parts)
    static = {
        method: {
            V.SIGNAL_POPULARITY: normalise(pop, method),
            V.SIGNAL_QUALITY: (
                base.static_normalised[method][V.SIGNAL_QUALITY]
                if not items.k
                else normalise(model.quality, method)
            ),
        }
        for method in NORMALISATIONS
    }
    return replace(model, static_normalised=static)


def eligibility(
    known: np.ndarray | None, items: NewItems, filters: Filters, n: int
) -> np.ndarray | None:
    """``(n + k,)`` mask: the known items' mask (None = all) then the new products' filters
    and availability (the same filter semantics, on their own catalogue)."""
    if not items.k:
        return known
    new = eligibility_mask(items.catalogue, filters)
    new = items.available if new is None else new & items.available
    head = np.ones(n, dtype=bool) if known is None else known
    return np.concatenate([head, new])


def all_available(known: np.ndarray, items: NewItems) -> np.ndarray:
    """``(n + k,)`` availability of known and new products."""
    return known if not items.k else np.concatenate([known, items.available])


def all_embeddings(base: np.ndarray, items: NewItems) -> np.ndarray:
    """``(n + k, e)`` embeddings of known and new products."""
    if not items.k or items.embeddings is None:
        return base
    return np.asarray(items.model_parts.get("embeddings", np.vstack([base, items.embeddings])))


def content_neighbours(
    vectors: np.ndarray, query: np.ndarray, exclude: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """(indices, cosine) of the best ``limit`` rows of ``vectors`` by cosine to ``query``,
    ``exclude`` left out, ties broken by index (as :class:`ItemNeighbours` ranks)."""
    sims = np.round(vectors @ query, V.SCORE_DECIMALS).astype(np.float64)
    keys = np.arange(len(sims), dtype=np.float64) * 1e-11 - sims
    keys[exclude] = np.inf
    width = min(limit, len(sims) - 1)
    if width <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    top = np.argpartition(keys, width - 1)[:width]
    top = top[np.argsort(keys[top], kind="stable")]
    top = top[np.isfinite(keys[top])]
    return top, sims[top]


def merge_neighbours(
    top: np.ndarray, sims: np.ndarray, items: NewItems, query: np.ndarray, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    """A known product's cached content neighbours merged with the new products by cosine."""
    if not items.k or items.embeddings is None:
        return top, sims
    new_sims = np.round(items.embeddings @ query, V.SCORE_DECIMALS).astype(np.float64)
    new_top = np.arange(items.k)
    if items.k > limit:  # only the best ``limit`` new ones can enter (ties: lower index first)
        keys = new_top * 1e-11 - new_sims
        new_top = np.sort(np.argpartition(keys, limit - 1)[:limit])
    indices = np.concatenate([top, items.base + new_top])
    values = np.concatenate([sims, new_sims[new_top]])
    order = np.lexsort((indices, -values))[:limit]
    return indices[order], values[order]


def bundle_embedder(processed_dir: str | Path, bundle: ModelBundle) -> Embedder | None:
    """The model's own fitted text encoder (``content_based_embeddings/text_encoder/``), loaded
    on first use; None when the model has no embeddings or the saved encoder built other ones
    (its ``embedding_version`` differs from the model's)."""
    # imported here: the encoders pull in scikit-learn, which serving needs only for this
    from recommender.embeddings.base import STATE_FILE
    from recommender.embeddings.encoders import load_encoder
    from recommender.embeddings.pipeline import encoder_dir

    if bundle.model.embeddings is None:
        return None
    directory = encoder_dir(processed_dir)
    try:
        state = read_json(directory / STATE_FILE, "text encoder state")
    except (FileNotFoundError, ValueError) as exc:
        log.warning("new products are embedded as the catalogue centroid: %s", exc)
        return None
    expected = bundle.info.get("embedding_version")
    built = state.get("embedding_version") if isinstance(state, dict) else None
    if expected is not None and built is not None and built != expected:
        log.warning(
            "new products are embedded as the catalogue centroid: the encoder in %s built "
            "embeddings %s, the model uses %s (re-run embed and build)",
            directory,
            built,
            expected,
        )
        return None
    loaded: list[Any] = []

    def embed(texts: Sequence[str]) -> np.ndarray:
        if not loaded:
            loaded.append(load_encoder(directory))
        vectors = loaded[0].encode(list(texts))
        return np.asarray(vectors, dtype=np.float32)

    return embed
