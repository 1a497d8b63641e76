"""One user's ranking as item indices and rounded scores, before it becomes response records.

The engine ranks into a :class:`Ranked` and builds the ``{**record, "rank", "score"}`` dicts
only when asked (:meth:`Ranked.records`): the HTTP layer writes the JSON straight from the
indices and scores with every product record encoded once per model, so an uncached answer or a
1,000-user batch never builds a dict per item. The results cache keeps :class:`Ranked` values:
two short lists per answer instead of ``topk`` dicts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Ranked:
    """``indices[k]`` is the product at rank ``k + 1`` with score ``scores[k]``; ``source`` maps
    a product index to its response record (the catalogue's records, or a snapshot of the
    ranked products' records with live updates);
    ``explains`` (``explain`` requests only) the per-item explanation."""

    indices: list[int]
    scores: list[float]
    source: Sequence[Mapping[str, Any]] | Mapping[int, Mapping[str, Any]] = field(repr=False)
    explains: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.indices)

    def records(self) -> list[dict[str, Any]]:
        """The response records, best first: each product's record with its rank and score
        (and ``explain``); a new list of new dicts at every call."""
        source = self.source
        items = [
            {**source[item], "rank": rank, "score": score}
            for rank, item, score in zip(
                range(1, len(self.indices) + 1), self.indices, self.scores, strict=True
            )
        ]
        if self.explains is not None:
            for entry, explain in zip(items, self.explains, strict=True):
                entry["explain"] = explain
        return items
