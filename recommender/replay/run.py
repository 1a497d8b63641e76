"""``evaluate --replay`` end to end: cut the source at T, build before T, stream the rest."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.config.serving import PathsSettings, ServingSettings
from recommender.config.training import TrainingSettings
from recommender.events import Event, SqliteEventStore
from recommender.replay.cutoff import Progress, build_before, split_at_fraction
from recommender.replay.stream import replay_events
from recommender.replay.summary import PROTOCOL, summarise
from recommender.serving import load_bundle

log = logging.getLogger(__name__)
EVENTS_FILE = "replay-events.sqlite3"


def interactions_to_events(frame: pd.DataFrame) -> Iterator[Event]:
    """Canonical interaction rows (time order) as ``rating`` events, the way a shop would send
    its reviews; ids ``replay-<row>``."""
    seconds = frame[V.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
    ratings = np.clip(np.rint(frame[V.RATING].to_numpy(np.float64)), 1, 5).astype(int)
    users = frame[V.USER_ID].astype(str).tolist()
    products = frame[V.PRODUCT_ID].astype(str).tolist()
    for row, (user, product) in enumerate(zip(users, products, strict=True)):
        yield Event(
            event_id=f"replay-{row}",
            user_id=user,
            product_id=product,
            type=V.EVENT_RATING,
            timestamp=float(seconds[row]),
            rating=int(ratings[row]),
        )


def run_replay(
    source: str,
    input_dir: str | Path,
    workdir: str | Path,
    training: TrainingSettings,
    serving: ServingSettings,
    fraction: float = 0.2,
    model_types: Sequence[str] = V.MODEL_TYPES,
    topk: int = 10,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Build on the data before T, replay the data after it; the JSON report."""
    say = progress or (lambda _line: None)
    started = time.perf_counter()
    split = split_at_fraction(source, input_dir, fraction)
    cutoff_iso = datetime.fromtimestamp(split.cutoff, timezone.utc).isoformat(timespec="seconds")
    say(
        f"cut-off T = {cutoff_iso}: {len(split.before)} interactions before, "
        f"{len(split.after)} streamed"
    )
    processed, registry = build_before(split, workdir, training, model_types, say)
    built = time.perf_counter()
    settings = serving.model_copy(
        update={"paths": PathsSettings(processed_dir=str(processed), registry_dir=str(registry))}
    )
    bundle = load_bundle(settings)
    store_path = Path(workdir) / EVENTS_FILE
    store_path.unlink(missing_ok=True)
    store = SqliteEventStore(store_path, synchronous="NORMAL")
    try:
        observations, counts = replay_events(
            bundle, settings, interactions_to_events(split.after), store, topk
        )
    finally:
        store.close()
    streamed = time.perf_counter()
    ev = training.evaluation
    say(f"streamed {counts.events} events ({counts.scored} scored) in {streamed - built:.1f}s")
    return {
        "protocol": PROTOCOL,
        "stage": "replay",
        "source": source,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "fraction": fraction,
        "cutoff": split.cutoff,
        "cutoff_utc": cutoff_iso,
        "model_id": bundle.model_id,
        "model_type": bundle.info.get("model_type"),
        # the build's live validation choice (None: nothing to decide on); the config may override
        "live_fold_in": bundle.info.get("live_fold_in"),
        "trainable_fold_in": settings.events.trainable_fold_in,
        "hybrid": bundle.hybrid.to_dict(),
        "k": topk,
        "bootstrap_samples": ev.bootstrap_samples,
        "interactions_before": len(split.before),
        "stream": {
            "events": counts.events,
            "positives": counts.positives,
            "scored": counts.scored,
            "repeats": counts.repeats,
            "unknown_products": counts.unknown_products,
        },
        "seconds": {"build": round(built - started, 1), "stream": round(streamed - built, 1)},
        "segments": summarise(observations, topk, ev.bootstrap_samples, ev.seed),
    }
