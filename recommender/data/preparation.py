"""The preparation pipeline: raw source -> validated, deduplicated, split, versioned files.

Steps (SPEC §3): load the source's canonical tables (bad rows dropped and counted) -> drop
interactions with unknown products (counted: one canonical product id end to end) -> dedup
(user, product) keeping the latest -> confidence weights and positives -> trainable vs cold users
and the temporal split -> product text -> data version -> write every file via a staging folder.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from recommender import vocabulary as V
from recommender.config.training import DataSettings
from recommender.data.event_input import EventInput, apply_product_records, merge_interactions
from recommender.data.sources import get_loader
from recommender.data.split import assign_splits, confidence_weights, dedup_latest, popular_items
from recommender.data.stats import data_stats, data_version
from recommender.data.validation import UNKNOWN_PRODUCT, merge_counts
from recommender.data.writer import staged_files, write_processed
from recommender.errors import EmptyDataError
from recommender.text.product_text import build_product_texts

log = logging.getLogger(__name__)


def _settings_dict(settings: DataSettings) -> dict[str, Any]:
    return {
        "positive_threshold": float(settings.positive_threshold),
        "confidence_alpha": float(settings.confidence_alpha),
        "popular_top_k": int(settings.popular_top_k),
    }


def prepare(
    source: str,
    input_dir: str | Path,
    out_dir: str | Path,
    settings: DataSettings | None = None,
    events: EventInput | None = None,
) -> dict[str, Any]:
    """Prepare ``source`` read from ``input_dir`` into ``out_dir``; return the data stats.

    ``events`` (read from the event store, :mod:`recommender.data.event_input`) adds interactions
    and catalogue changes before validation against the catalogue and the dedup.

    Raises InvalidDataError / EmptyDataError (naming file and column) on bad input, in which case
    ``out_dir`` keeps its previous files. Other files in ``out_dir`` (embeddings) are left alone.
    """
    settings = settings or DataSettings()
    began = time.perf_counter()
    loader = get_loader(source)
    log.info("prepare: reading source %r from %s", source, input_dir)
    tables = loader(Path(input_dir))
    products = tables.products.reset_index(drop=True)
    interactions = tables.interactions
    dropped = dict(tables.dropped)
    merged = merge_counts(tables.merged)
    product_changes: dict[str, int] = {}
    if events is not None:
        products, product_changes = apply_product_records(products, events.products)
        interactions = merge_interactions(interactions, events.interactions)
    log.info(
        "prepare: %d products, %d interactions read (%d bad rows dropped%s) in %.1fs",
        len(products),
        len(interactions),
        sum(dropped.values()),
        "".join(f", {count} {reason} rows merged" for reason, count in merged.items()),
        time.perf_counter() - began,
    )

    unknown = ~interactions[V.PRODUCT_ID].isin(products[V.PRODUCT_ID])
    if unknown.any():
        dropped[UNKNOWN_PRODUCT] = dropped.get(UNKNOWN_PRODUCT, 0) + int(unknown.sum())
        interactions = interactions.loc[~unknown.to_numpy()]
    if interactions.empty:
        raise EmptyDataError(
            f"no valid interactions left in {input_dir} (source {source}) after dropping bad rows "
            f"{merge_counts(dropped)}: the dataset is empty."
        )

    interactions, duplicates = dedup_latest(interactions)
    interactions = interactions.assign(
        **{
            V.WEIGHT: confidence_weights(
                interactions[V.RATING].to_numpy(),
                interactions[V.WEIGHT].to_numpy(),
                settings.confidence_alpha,
            )
        }
    )
    interactions, trainable = assign_splits(interactions, settings.positive_threshold)
    if not trainable:
        log.warning(
            "prepare: no trainable user (>= 2 interactions, >= 1 positive); CF cannot train"
        )
    log.info(
        "prepare: %d interactions after dedup (%d duplicates), %d users, %d trainable",
        len(interactions),
        duplicates,
        interactions[V.USER_ID].nunique(),
        len(trainable),
    )

    log.info("prepare: building product texts for %d products", len(products))
    products = products.assign(**{V.TEXT: build_product_texts(products)})
    settings_dict = _settings_dict(settings)
    version = data_version(products, interactions, settings_dict)
    dropped_counts = merge_counts(dropped)
    stats = data_stats(
        version,
        source,
        products,
        interactions,
        trainable,
        dropped_counts,
        duplicates,
        settings_dict,
        merged,
    )
    if events is not None:
        stats["events"] = {**events.stats(), "products": product_changes}
    popular = popular_items(interactions, products[V.PRODUCT_ID].tolist(), settings.popular_top_k)
    with staged_files(out_dir) as stage:
        write_processed(stage, version, products, interactions, trainable, popular, stats)
    elapsed = time.perf_counter() - began
    log.info("prepare: wrote %s (data_version %s) in %.1fs", out_dir, version, elapsed)
    return stats
