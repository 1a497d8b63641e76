"""Request context: ``context_items`` resolved and merged, and similar items re-ranked for a user.

``context_items`` (the cart, the product on screen) become each user's newest live positives and
seen items (:func:`with_context`): every signal scores them as the newest history items and they
are excluded like seen items. A trainable user's CF vector is folded in again only when the
context brings an item beyond the stored positives (:func:`fresh_evidence`). For
``similar_items`` with a ``user_id``, :func:`blend_for_user` orders the neighbours by
``(1 − w) · similarity + w · the user's hybrid score`` (both min-max scaled over them).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from recommender import vocabulary as V
from recommender.errors import InvalidRequestError
from recommender.scoring.hybrid import normalise
from recommender.serving.bundle import ModelBundle
from recommender.serving.filters import Filters, eligibility_mask
from recommender.serving.live_state import LiveState, LiveUser
from recommender.serving.new_products import eligibility

_EMPTY = np.zeros(0, dtype=np.int64)


def context_indices(
    bundle: ModelBundle, live: LiveState | None, context: Sequence[str]
) -> np.ndarray | None:
    """Item indices of the request's context ids, oldest first (None: no context).

    Products of the model's catalogue and those added since the build (PUT /products) are
    known; a product added beyond ``events.max_new_products`` is known but has nothing to
    score yet and is left out. Any other id is a 422 that names it.
    """
    if not context:
        return None
    index = bundle.catalogue.index
    new = None if live is None else live.new_items
    found: list[int] = []
    for pid in context:  # at most requests.max_context_items
        item = index.get(pid)
        if item is None and new is not None:
            item = new.index_of(pid)
        if item is not None:
            found.append(int(item))
        elif live is None or not live.knows_product(pid):
            raise InvalidRequestError(
                f"context_items: product {pid!r} is not in the catalogue of model "
                f"{bundle.model_id}; send product ids of the shop (a product added "
                "since the build is known once it was sent with PUT /products)."
            )
    return np.array(found, dtype=np.int64) if found else None


def with_context(entry: LiveUser | None, context: np.ndarray) -> LiveUser:
    """``entry``'s live evidence with the ``context`` items as its newest positives and seen."""
    if entry is None:
        return LiveUser(seen=context, liked=context, version=0)
    liked = entry.liked[~np.isin(entry.liked, context)]
    return LiveUser(
        seen=np.concatenate([entry.seen, context]),
        liked=np.concatenate([liked, context]),
        version=entry.version,
    )


def fresh_evidence(
    bundle: ModelBundle, user: str, entry: LiveUser | None, context: np.ndarray
) -> bool:
    """Whether ``user``'s live positives or ``context`` hold an item beyond their stored
    positives: only then is a trainable user's CF vector folded in again (the stored row was
    fit on the stored positives, so a context of those adds nothing to it)."""
    if entry is not None and entry.liked.size:
        return True
    hist = bundle.histories
    row = hist.index.get(user, -1)
    stored = hist.liked(row) if row >= 0 else _EMPTY
    return not bool(np.isin(context, stored).all())


def eligible(
    bundle: ModelBundle, live: LiveState | None, items: np.ndarray, filters: Filters
) -> np.ndarray:
    """``(len(items),)`` bool: which of ``items`` (known or new products) match ``filters``."""
    mask = eligibility_mask(bundle.catalogue, filters, price=None if live is None else live.price)
    if live is not None:
        mask = eligibility(mask, live.new_items, filters, bundle.n_items)
    if mask is None:
        return np.ones(items.size, dtype=bool)
    keep = np.zeros(items.size, dtype=bool)
    inside = items < mask.size
    keep[inside] = mask[items[inside]]
    return keep


def unseen(
    bundle: ModelBundle, user: str, live_user: LiveUser | None, items: np.ndarray
) -> np.ndarray:
    """``(len(items),)`` bool: which of ``items`` the user has not seen (stored or live)."""
    row = bundle.histories.index.get(user, -1)
    seen = [live_user.seen] if live_user is not None else []
    if row >= 0:
        seen.append(bundle.histories.items(row))
    if not seen:
        return np.ones(items.size, dtype=bool)
    return ~np.isin(items, np.concatenate(seen))


def blend_for_user(
    items: np.ndarray, similarity: np.ndarray, relevance: np.ndarray, weight: float
) -> tuple[np.ndarray, np.ndarray]:
    """``items`` re-ranked by ``(1 − weight) · similarity + weight · relevance[item]`` (both
    min-max scaled over ``items``), ties in the similarity order: (items, blended scores).

    A product newer than the scored frame has no relevance yet: it gets the lowest one."""
    inside = items < relevance.size
    scores = np.zeros(items.size, dtype=np.float64)
    scores[inside] = relevance[items[inside]]
    scores[~inside] = scores[inside].min() if inside.any() else 0.0
    near = normalise(similarity).astype(np.float64)
    blend = (1.0 - weight) * near + weight * normalise(scores).astype(np.float64)
    blend = np.round(blend, V.SCORE_DECIMALS)
    order = np.lexsort((np.arange(items.size), -blend))
    return items[order], blend[order]
