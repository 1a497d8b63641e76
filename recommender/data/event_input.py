"""The event store as an input of ``prepare``: events -> interactions, product records -> catalogue.

Rules (``config/training.yaml`` ``event_input``):

- an event becomes one interaction row (``source`` = ``events:<type>``) with the rating its type
  stands for (``rating`` events carry their own) and the type's confidence weight; types without a
  rating (``remove_from_cart``) are not interactions. ``event_id`` is unique in the store, and
  rows are deduplicated on it again here, so reading the store twice gives the same data version;
- the preparation's dedup then applies (one row per user/product, the latest), with one addition:
  an *implied* rating never lowers an earlier rating of the same pair (a view after a purchase
  keeps the purchase's 5, with the view's time);
- each product's latest record is applied to the catalogue: an unknown id is appended with its
  fields, a known one gets its fields overwritten (price updates, renames); ``available`` becomes
  a column (true for every product without a record) when any record exists.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.config.training import EventsInputSettings
from recommender.data.validation import clean_products
from recommender.events import EventRecord, EventStore, ProductRecord, replay

log = logging.getLogger(__name__)

EVENT_SOURCE_PREFIX = "events:"
_IMPLIED = "_implied_rating"


@dataclass(frozen=True)
class EventInput:
    """What ``prepare`` takes from the store: interaction rows and each product's latest state."""

    interactions: pd.DataFrame  # vocabulary.INTERACTION_COLUMNS + an "implied rating" flag
    products: dict[str, ProductRecord] = field(default_factory=dict)
    latest_seq: int = 0  # the highest sequence read (0: the store was empty)
    events_read: int = 0
    ignored_types: dict[str, int] = field(default_factory=dict)
    store: str = ""  # where it came from, for data_stats.json

    def stats(self) -> dict[str, Any]:
        """The ``events`` block of ``data_stats.json``."""
        return {
            "store": self.store,
            "latest_seq": self.latest_seq,
            "events_read": self.events_read,
            "interactions": len(self.interactions),
            "ignored_types": dict(self.ignored_types),
            "product_records": len(self.products),
        }


def read_event_input(
    store: EventStore, settings: EventsInputSettings, description: str = ""
) -> EventInput:
    """Replay the whole store into an :class:`EventInput` (one pass, batches of the store)."""
    events: list[EventRecord] = []
    products: dict[str, ProductRecord] = {}
    latest = 0
    for record in replay(store):
        latest = max(latest, record.seq)
        if isinstance(record, EventRecord):
            events.append(record)
        else:
            products[record.product_id] = record  # in sequence order: the last one wins
    frame, ignored = events_to_interactions(events, settings)
    return EventInput(frame, products, latest, len(events), ignored, description)


def events_to_interactions(
    records: Iterable[EventRecord], settings: EventsInputSettings
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Interaction rows of ``records`` and the count of events per type that are not rows."""
    rows: list[tuple[str, str, str, float, float, float, str, bool]] = []
    ignored: dict[str, int] = {}
    for record in records:
        event = record.event
        implied = event.type != V.EVENT_RATING
        rating = settings.ratings.get(event.type) if implied else event.rating
        weight = settings.weights.get(event.type)
        if rating is None or weight is None:
            ignored[event.type] = ignored.get(event.type, 0) + 1
            continue
        rows.append(
            (
                event.event_id,
                event.user_id,
                event.product_id,
                float(rating),
                event.timestamp,
                float(weight),
                EVENT_SOURCE_PREFIX + event.type,
                implied,
            )
        )
    names = ["event_id", V.USER_ID, V.PRODUCT_ID, V.RATING, "seconds", V.WEIGHT, V.SOURCE, _IMPLIED]
    frame = pd.DataFrame(rows, columns=names).drop_duplicates("event_id", keep="first")
    out = pd.DataFrame(
        {
            V.USER_ID: frame[V.USER_ID].astype("str"),
            V.PRODUCT_ID: frame[V.PRODUCT_ID].astype("str"),
            V.RATING: frame[V.RATING].astype("float64"),
            V.TIMESTAMP: pd.to_datetime(frame["seconds"].to_numpy(np.float64), unit="s"),
            V.WEIGHT: frame[V.WEIGHT].astype("float64"),
            V.SOURCE: frame[V.SOURCE].astype("str"),
            _IMPLIED: frame[_IMPLIED].astype(bool),
        }
    )
    return out.reset_index(drop=True), ignored


def merge_interactions(source: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    """``source`` rows plus event rows, where an implied rating takes the pair's best rating.

    The result has the source's columns; the preparation's dedup (latest row per pair) runs next.
    """
    if events.empty:
        return source
    both = pd.concat(
        [source.assign(**{_IMPLIED: False}), events[list(source.columns) + [_IMPLIED]]],
        ignore_index=True,
    )
    best = both.groupby([V.USER_ID, V.PRODUCT_ID], sort=False)[V.RATING].transform("max")
    implied = both[_IMPLIED].to_numpy(bool)
    both[V.RATING] = np.where(implied, best.to_numpy(), both[V.RATING].to_numpy())
    return both.drop(columns=[_IMPLIED])


def apply_product_records(
    products: pd.DataFrame, records: dict[str, ProductRecord]
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The catalogue with each product's latest record applied; counts of added/updated rows.

    A record of a known product overwrites the fields it carries (a PUT record carries all of
    them); an unknown product is appended (missing columns get the canonical defaults). With any
    record, ``available`` becomes a column, true unless a record says otherwise.
    """
    if not records:
        return products, {"added": 0, "updated": 0}
    out = products.copy()
    if V.PRODUCT_AVAILABLE not in out:
        out[V.PRODUCT_AVAILABLE] = True
    position = {pid: i for i, pid in enumerate(out[V.PRODUCT_ID].astype(str))}
    new_rows: list[dict[str, Any]] = []
    updated = 0
    for pid, record in records.items():
        fields = {k: v for k, v in record.fields.items() if k in V.PRODUCT_UPDATE_FIELDS}
        row = position.get(pid)
        if row is None:
            new_rows.append({V.PRODUCT_ID: pid, V.NAME: pid, **fields})
            continue
        updated += 1
        for name, value in fields.items():
            column = out.columns.get_loc(name)
            out.iat[row, column] = list(value) if name == V.SKIN_TYPES else value
    if new_rows:
        added, _ = clean_products(pd.DataFrame(new_rows), "event store product records")
        added[V.PRODUCT_AVAILABLE] = [bool(r.get(V.PRODUCT_AVAILABLE, True)) for r in new_rows]
        out = pd.concat([out, added[list(out.columns)]], ignore_index=True)
    out[V.PRODUCT_AVAILABLE] = out[V.PRODUCT_AVAILABLE].astype(bool)
    log.info("prepare: event store products: %d added, %d updated", len(new_rows), updated)
    return out, {"added": len(new_rows), "updated": updated}
