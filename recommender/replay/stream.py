"""The prequential loop: stream events in time order, predict *before* applying each one.

For every event (oldest first) the clock of the live state is set to the event's timestamp (so
trending popularity is "as of" that moment, not the wall clock). When the event is a positive
one on an item new to its user, three rankers answer the user's top-K first:

- ``frozen``: the served model as it was built (no live state: today's behaviour without events);
- ``live``: the same model with live state, fed from the event store by the service's own
  :class:`~recommender.serving.LiveFeed` (seen items, cold routing, fold-in, live popularity);
- ``live_popularity``: the live engine asked to rank by trending popularity alone
  (``rerank_weights = {"popularity": 1}``).

Only then is the event appended to the store, which the live engine reads on its next request:
no event is used before it is predicted. Every observation records the store sequence the live
state had applied when it was predicted, so tests can check that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from recommender import vocabulary as V
from recommender.config.serving import ServingSettings
from recommender.events import Event, EventStore
from recommender.serving import (
    Engine,
    LiveFeed,
    LiveState,
    ModelBundle,
    RecommendOptions,
    ServingCaches,
)

FROZEN = "frozen"
LIVE = "live"
LIVE_POPULARITY = "live_popularity"
VARIANTS = (FROZEN, LIVE, LIVE_POPULARITY)
POPULARITY_ONLY = {V.SIGNAL_POPULARITY: 1.0}


@dataclass(frozen=True)
class Observation:
    """One predicted event: who, which item, the user's segment then, and each variant's rank.

    ``ranks[variant]`` is the 0-based position of the item in that variant's top-K, -1 when
    absent. ``applied_seq`` is the last store sequence the live state had applied.
    ``new_item``: nobody interacted with the item before the cut-off (only content and live
    popularity can know it).
    """

    index: int  # position of the event in the stream
    user_id: str
    item: int
    timestamp: float
    segment: str
    ranks: dict[str, int]
    applied_seq: int
    new_item: bool = False


@dataclass(frozen=True)
class StreamCounts:
    """What the stream held and what was scored."""

    events: int
    positives: int
    scored: int
    repeats: int  # positive events on an item the user had already interacted with
    unknown_products: int  # events naming a product outside the model's catalogue


def is_positive(event: Event, positive_rating: int) -> bool:
    """The live state's rule: views, carts and purchases, and ratings >= ``positive_rating``."""
    if event.type == V.EVENT_RATING:
        return event.rating is not None and event.rating >= positive_rating
    return event.type in (V.EVENT_VIEW, V.EVENT_CART, V.EVENT_PURCHASE)


class _EventClock:
    """The live state's clock during a replay: the timestamp of the event being handled."""

    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def replay_events(
    bundle: ModelBundle,
    settings: ServingSettings,
    events: Iterable[Event],
    store: EventStore,
    topk: int = 10,
    challengers: Mapping[str, ModelBundle] | None = None,
) -> tuple[list[Observation], StreamCounts]:
    """Stream ``events`` (in time order) through an empty ``store``; observations and counts.

    ``challengers`` (name -> another model on the same data) are ranked too, each bound to the
    one live state as the service binds an A/B variant's model; their ranks are under ``name``."""
    clock = _EventClock(0.0)
    live_state = LiveState(bundle, settings.events, clock=clock)
    clock.now = live_state.cutoff
    feed = LiveFeed(store, settings.events)
    feed.attach(live_state)
    live = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    live.live, live.feed = live_state, feed
    frozen = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    others: dict[str, Engine] = {}
    for name, other in (challengers or {}).items():
        engine = Engine(other, ServingCaches.from_settings(settings.cache), settings)
        engine.live, engine.feed = live_state, feed
        others[name] = engine
    # relevance as served, without MMR diversity: every variant ranks by its scores alone
    plain = live.options(topk=topk, rerank=False, exclude_seen=True)
    popularity = live.options(topk=topk, rerank=False, exclude_seen=True, weights=POPULARITY_ONLY)
    index = bundle.catalogue.index
    seen: dict[str, set[int]] = {}
    observations: list[Observation] = []
    n_events = positives = repeats = unknown = 0
    for position, event in enumerate(events):
        n_events += 1
        clock.now = max(clock.now, event.timestamp)
        item = index.get(event.product_id)
        if item is None:
            unknown += 1
        elif is_positive(event, settings.events.positive_rating):
            positives += 1
            history = seen.get(event.user_id)
            if history is None:
                history = seen[event.user_id] = set(_model_items(bundle, event.user_id))
            if item in history:
                repeats += 1
            else:
                live.sync_live()
                segment = live.segment_of(event.user_id)
                ranks = {
                    FROZEN: _rank(frozen, event.user_id, item, plain),
                    LIVE: _rank(live, event.user_id, item, plain),
                    LIVE_POPULARITY: _rank(live, event.user_id, item, popularity),
                    **{n: _rank(e, event.user_id, item, plain) for n, e in others.items()},
                }
                observations.append(
                    Observation(
                        position,
                        event.user_id,
                        item,
                        event.timestamp,
                        segment,
                        ranks,
                        live_state.cursor,
                        not bool(bundle.has_interactions[item]),
                    )
                )
        if item is not None:
            seen.setdefault(event.user_id, set(_model_items(bundle, event.user_id))).add(item)
        store.append([event])
    counts = StreamCounts(n_events, positives, len(observations), repeats, unknown)
    return observations, counts


def _model_items(bundle: ModelBundle, user_id: str) -> Sequence[int]:
    row = bundle.histories.index.get(user_id, -1)
    return () if row < 0 else np.asarray(bundle.histories.items(row)).tolist()


def _rank(engine: Engine, user_id: str, item: int, options: RecommendOptions) -> int:
    answer = engine.recommend(user_id, options)
    ids = [entry[V.PRODUCT_ID] for entry in answer.items]
    product_id = engine.bundle.catalogue.item_ids[item]
    return ids.index(product_id) if product_id in ids else -1
