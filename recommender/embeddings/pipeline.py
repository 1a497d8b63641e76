"""Build ``content_based_embeddings/product_embeddings.pt`` for a processed catalogue.

Every product of ``enriched_products.parquet`` gets one row, in that file's (canonical) order.
A product without skin types/ingredients/description is embedded from its name, brand and
category (counted as ``n_empty_text``); a product whose whole text is empty or unknown to the
encoder gets the normalised catalogue centroid (counted as ``n_fallback``), so no row is zero.
The fitted encoder is saved beside the embeddings (``text_encoder/``) to encode new text later.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.data.processed import load_processed, parquet_data_version
from recommender.embeddings.base import l2_normalise
from recommender.embeddings.encoders import get_encoder
from recommender.embeddings.store import check_embeddings, embedding_version, save_embeddings
from recommender.errors import EmptyDataError, InvalidDataError
from recommender.storage import staged_directory
from recommender.text.normalisation import is_missing
from recommender.text.product_text import TEXT_FIELDS, build_product_texts, has_body_text

logger = logging.getLogger(__name__)


def embeddings_path(processed_dir: str | Path) -> Path:
    """``<processed>/content_based_embeddings/product_embeddings.pt``."""
    return Path(processed_dir) / V.EMBEDDINGS_DIR / V.EMBEDDINGS_FILE


def encoder_dir(processed_dir: str | Path) -> Path:
    """``<processed>/content_based_embeddings/text_encoder/``."""
    return Path(processed_dir) / V.EMBEDDINGS_DIR / V.TEXT_ENCODER_DIR


def _read_catalogue(processed_dir: Path) -> tuple[pd.DataFrame, str]:
    """(products in canonical order, data_version). Uses the full cross-checked load when every
    processed file is there, else only the products parquet (embed may run right after the
    products are written)."""
    if not processed_dir.is_dir():
        raise InvalidDataError(
            f"processed data directory {processed_dir} does not exist. "
            "Run `python -m recommender prepare` first."
        )
    products_file = processed_dir / V.PRODUCTS_FILE
    if not products_file.is_file():
        raise InvalidDataError(
            f"{V.PRODUCTS_FILE} not found in {processed_dir}. "
            "Run `python -m recommender prepare` first."
        )
    if all((processed_dir / name).is_file() for name in V.PROCESSED_FILES):
        data = load_processed(processed_dir)
        return data.products, data.data_version
    logger.warning("embed: only %s is read (other processed files missing)", V.PRODUCTS_FILE)
    try:
        products = pd.read_parquet(products_file)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise InvalidDataError(f"{products_file} is not a readable parquet file ({exc}).") from exc
    return products, parquet_data_version(products_file) or "unknown"


def product_texts(products: pd.DataFrame) -> list[str]:
    """The embedded strings; where the fields give nothing, a precomputed ``text`` is used."""
    texts = build_product_texts(products)
    if V.TEXT in products.columns:
        given = products[V.TEXT].tolist()
        texts = [t if t or is_missing(g) else str(g) for t, g in zip(texts, given, strict=True)]
    return texts


def _fill_zero_rows(embeddings: np.ndarray) -> tuple[np.ndarray, int]:
    zero = ~np.any(embeddings != 0, axis=1)
    if not zero.any():
        return embeddings, 0
    centroid = l2_normalise(embeddings[~zero].mean(axis=0, keepdims=True))
    if not centroid.any():
        raise EmptyDataError(
            "no product has any text to embed (names, brands, descriptions are empty)."
        )
    out = embeddings.copy()
    out[zero] = centroid[0]
    return out, int(zero.sum())


def build_product_embeddings(
    processed_dir: str | Path = V.DEFAULT_PROCESSED_DIR,
    encoder: str = "tfidf",
    model: str | None = None,
    batch_size: int = 32,
    dim: int = 512,
    **encoder_options: Any,
) -> Path:
    """Encode every product of the processed catalogue and write the .pt (and the fitted encoder).

    Returns the path of ``product_embeddings.pt``. Nothing is written when any step fails.
    """
    started = time.perf_counter()
    directory = Path(processed_dir)
    text_encoder = get_encoder(
        encoder, model=model, batch_size=batch_size, dim=dim, **encoder_options
    )
    products, data_version = _read_catalogue(directory)
    if products.empty:
        raise EmptyDataError(f"{directory / V.PRODUCTS_FILE} has no products to embed.")
    if V.PRODUCT_ID not in products.columns:
        raise InvalidDataError(f"{directory / V.PRODUCTS_FILE} lacks column '{V.PRODUCT_ID}'.")
    product_ids = products[V.PRODUCT_ID].astype(str).tolist()

    texts = product_texts(products)
    n_empty_text = int((~has_body_text(products)).sum())
    if not any(texts):
        raise EmptyDataError(f"no product in {directory / V.PRODUCTS_FILE} has any text to embed.")
    embeddings = text_encoder.fit(texts).encode(texts)
    embeddings, n_fallback = _fill_zero_rows(embeddings)
    check_embeddings(embeddings, product_ids, "built embeddings")
    if embeddings.shape[0] != len(products):
        raise InvalidDataError("embedding rows do not cover the catalogue")  # defensive

    version = embedding_version(embeddings, product_ids)
    metadata: dict[str, Any] = {
        "model_name": text_encoder.name,
        "encoder": text_encoder.kind,
        "dim": text_encoder.dim,
        "text_fields": list(TEXT_FIELDS),
        "encoder_params": text_encoder.params(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "data_version": data_version,
        "n_products": len(product_ids),
        "n_empty_text": n_empty_text,
        "n_fallback": n_fallback,
    }
    with staged_directory(encoder_dir(directory)) as stage:
        text_encoder.save(stage, extra={"embedding_version": version, "data_version": data_version})
    path = save_embeddings(embeddings_path(directory), embeddings, product_ids, metadata)
    logger.info(
        "embed: %d products -> %s (%s, dim %d, %d without body text, %d fallback) in %.1fs",
        len(product_ids),
        path,
        text_encoder.name,
        text_encoder.dim,
        n_empty_text,
        n_fallback,
        time.perf_counter() - started,
    )
    return path
