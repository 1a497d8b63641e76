"""The replay's model: everything before a cut-off time T, built the way ``build`` builds.

:func:`split_at_fraction` reads a raw source once with its own adapter (so product ids, variant
families and bad-row rules are the production ones) and cuts its interactions at T, the
``1 - fraction`` quantile of their timestamps (0.2: the newest 20% are streamed): rows strictly
before T train the model, rows at or after T are the stream. :func:`build_before` writes the
pre-T rows as a ``canonical`` source and runs the normal prepare -> embed -> train (same tuning
budget as ``build``) -> register -> promote into a work directory, so nothing after T reaches
the model.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.config.training import TrainingSettings
from recommender.data import load_processed
from recommender.data.preparation import prepare
from recommender.data.sources import load_source
from recommender.embeddings import build_product_embeddings
from recommender.errors import EmptyDataError, InvalidRequestError
from recommender.registry import Registry
from recommender.storage import atomic_write_bytes
from recommender.training.pipeline import run_training
from recommender.training.publish import register_run

log = logging.getLogger(__name__)
PROCESSED = "processed"
REGISTRY = "registry"
RAW = "raw"
Progress = Callable[[str], None]


@dataclass(frozen=True)
class CutoffSplit:
    """A source cut at ``cutoff`` (UTC seconds): the catalogue, the rows before and the stream."""

    products: pd.DataFrame
    before: pd.DataFrame  # canonical interactions with timestamp < cutoff
    after: pd.DataFrame  # canonical interactions with timestamp >= cutoff, in time order
    cutoff: float
    fraction: float


def split_at_fraction(source: str, input_dir: str | Path, fraction: float) -> CutoffSplit:
    """Read ``source`` and cut its interactions at the ``1 - fraction`` timestamp quantile."""
    if not 0.0 < fraction < 1.0:
        raise InvalidRequestError(
            f"--replay-fraction {fraction}: must be between 0 and 1 (exclusive), e.g. 0.2 to "
            "stream the last 20% of time."
        )
    tables = load_source(source, input_dir)
    interactions = tables.interactions
    if interactions.empty:
        raise EmptyDataError(f"{input_dir} (source {source}): no interactions to replay.")
    seconds = interactions[V.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
    # the (1 - fraction) quantile of the timestamps: the newest ``fraction`` of interactions
    cutoff = float(np.quantile(seconds, 1.0 - fraction))
    before = interactions.loc[seconds < cutoff]
    after = interactions.loc[seconds >= cutoff]
    after = after.iloc[np.argsort(after[V.TIMESTAMP].to_numpy(), kind="stable")]
    return CutoffSplit(
        products=tables.products,
        before=before.reset_index(drop=True),
        after=after.reset_index(drop=True),
        cutoff=cutoff,
        fraction=fraction,
    )


def build_before(
    split: CutoffSplit,
    workdir: str | Path,
    settings: TrainingSettings,
    model_types: Sequence[str] = V.MODEL_TYPES,
    progress: Progress | None = None,
) -> tuple[Path, Path]:
    """Prepare, embed, train, register and promote on ``split.before``; (processed, registry)."""
    say = progress or (lambda _line: None)
    root = Path(workdir)
    raw = root / RAW
    raw.mkdir(parents=True, exist_ok=True)
    _write_parquet(split.products, raw / "products.parquet")
    _write_parquet(split.before, raw / "interactions.parquet")
    processed, registry_dir = root / PROCESSED, root / REGISTRY
    stats = prepare("canonical", raw, processed, settings.data)
    say(
        f"prepared {stats['n_interactions']} interactions before the cut-off "
        f"({stats['n_users']} users, {stats['trainable_users']} trainable)"
    )
    emb = settings.embedding
    build_product_embeddings(
        processed, encoder=emb.encoder, model=emb.model, batch_size=emb.batch_size, dim=emb.dim
    )
    run = run_training(load_processed(processed), settings, model_types, progress=say)
    registry = Registry(registry_dir)
    records = register_run(registry, run, settings)
    registry.promote(records[run.best].model_id, force=True)
    say(f"model {records[run.best].model_id} ({run.best}) built on data before the cut-off")
    return processed, registry_dir


def _write_parquet(frame: pd.DataFrame, path: Path) -> None:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    atomic_write_bytes(path, buffer.getvalue())
