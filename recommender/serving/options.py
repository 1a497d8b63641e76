"""The options of one recommendation request, validated once and carried as one frozen value.

:meth:`RecommendOptions.parse` is the door every public :class:`~recommender.serving.Engine`
call goes through: it applies the configured defaults and limits and raises
:class:`~recommender.errors.InvalidRequestError` with the fix for anything out of range.
:attr:`RecommendOptions.digest` is a fixed-size (16-byte) BLAKE2b digest of the options that
decide a ranking, so a results-cache key costs the same few bytes whether the request names no
filter or 1,000 excluded products and 200 brands.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypedDict

import orjson

from recommender.config.serving import ServingSettings
from recommender.errors import InvalidRequestError
from recommender.serving.filters import Filters
from recommender.serving.reranker import check_weights

DIGEST_BYTES = 16
NO_FILTERS = Filters()


class OptionArgs(TypedDict, total=False):
    """The loose keyword form of the options (``Engine.recommend(user, topk=5, ...)``)."""

    topk: int | None
    exclude_seen: bool
    filters: Filters | Mapping[str, Any] | None
    rerank: bool | None
    weights: Mapping[str, float] | None
    explain: bool
    diversity: float | None
    context_items: Sequence[str | int] | None


@dataclass(frozen=True)
class RecommendOptions:
    """Validated request options; ``weights`` is ``None`` for the model's tuned weights."""

    topk: int
    exclude_seen: bool = True
    filters: Filters = field(default=NO_FILTERS)
    rerank: bool = True
    weights: tuple[tuple[str, float], ...] | None = None
    explain: bool = False
    diversity: float | None = None  # MMR trade-off; None: rerank.diversity (an A/B variant's)
    # product ids the visitor has in front of them (cart, product on screen), oldest first: the
    # newest session items of every signal (see Engine.recommend); () = none
    context: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        settings: ServingSettings,
        topk: int | None = None,
        exclude_seen: bool = True,
        filters: Filters | Mapping[str, Any] | None = None,
        rerank: bool | None = None,
        weights: Mapping[str, float] | None = None,
        explain: bool = False,
        diversity: float | None = None,
        context_items: Sequence[str | int] | None = None,
    ) -> RecommendOptions:
        """Apply ``settings`` defaults (topk, rerank) and check every option against its limit."""
        limits = settings.requests
        topk = limits.default_topk if topk is None else int(topk)
        if not 1 <= topk <= limits.max_topk:
            raise InvalidRequestError(f"topk={topk}: must be between 1 and {limits.max_topk}.")
        if filters is None:
            flt = NO_FILTERS
        else:
            flt = filters if isinstance(filters, Filters) else Filters.from_mapping(filters)
        checked = check_weights(weights)
        if diversity is not None and not 0.0 <= float(diversity) <= 1.0:
            raise InvalidRequestError(f"diversity={diversity}: must be between 0 and 1.")
        return cls(
            topk=topk,
            exclude_seen=bool(exclude_seen),
            filters=flt,
            rerank=settings.rerank.enabled if rerank is None else bool(rerank),
            weights=None if checked is None else tuple(sorted(checked.items())),
            explain=bool(explain),
            diversity=None if diversity is None else float(diversity),
            context=_context(context_items, limits.max_context_items),
        )

    @property
    def weight_map(self) -> dict[str, float] | None:
        """The requested weights as a mapping (``None``: the model's defaults)."""
        return None if self.weights is None else dict(self.weights)

    @cached_property
    def digest(self) -> bytes:
        """16-byte BLAKE2b of a canonical encoding of every option that shapes the ranking
        (``explain`` only adds detail and is not part of it)."""
        flt = self.filters
        canonical = orjson.dumps(
            [
                self.topk,
                self.exclude_seen,
                self.rerank,
                self.weights,
                flt.brand,
                flt.category,
                flt.skin_type,
                flt.price_min,
                flt.price_max,
                flt.exclude_product_ids,
                self.diversity,
                # only when given: answers without context keep their digests
                *((list(self.context),) if self.context else ()),
            ]
        )
        return hashlib.blake2b(canonical, digest_size=DIGEST_BYTES).digest()


def _context(items: Sequence[str | int] | None, limit: int) -> tuple[str, ...]:
    """The context ids as strings, oldest first, each once (its newest position kept: a product
    put back in the cart is the newest item), at most ``limit`` of them."""
    if items is None:
        return ()
    if isinstance(items, (str, bytes)):
        raise InvalidRequestError("context_items must be a list of product ids, not one string.")
    ids = [str(item).strip() for item in items]
    if len(ids) > limit:
        raise InvalidRequestError(
            f"context_items has {len(ids)} products; at most {limit} "
            "(requests.max_context_items). Send the newest ones."
        )
    newest = {pid: k for k, pid in enumerate(ids)}
    return tuple(pid for k, pid in enumerate(ids) if newest[pid] == k)
