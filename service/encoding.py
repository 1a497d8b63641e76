"""Recommendation answers written as JSON bytes from item indices and scores.

Each product record of a model is encoded once (:class:`RecordJson`, lazily, per engine); an
answer is then joined from those fragments and its ranks and scores, with no dict per item and
no re-encoding of the records' text. The bytes are exactly what ``orjson.dumps`` gives for the
answer's dict (same keys, same order, same number formatting: the scores are encoded by orjson
too). Answers whose records are not the catalogue's own (live catalogue updates) or that carry
``explain`` are encoded from their dicts.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import orjson

from recommender.serving import Engine, Recommendation
from recommender.serving.ranked import Ranked
from service.responses import ORJSON_OPTIONS

_RANKS = [b'%d,"score":' % rank for rank in range(1001)]  # the bytes between rank and score
_SEGMENT_KEYS: dict[str, bytes] = {}  # segment -> its ``"segment":...,"recommendations":`` bytes
_TABLES: weakref.WeakKeyDictionary[Engine, RecordJson] = weakref.WeakKeyDictionary()
MEMO_MAX_BYTES = 16_384  # larger items arrays (topk ~50 and up) are not remembered


class RecordJson:
    """The records of one catalogue as JSON fragments ``{...,"rank":`` (filled on first use;
    threads may race to fill one slot, with the same bytes), and the items arrays of recent
    single answers (:class:`AnswerMemo`)."""

    def __init__(self, records: tuple[dict[str, Any], ...]) -> None:
        self.records = records
        self._fragments: list[bytes | None] = [None] * len(records)
        self.answers = AnswerMemo()

    def fragment(self, item: int) -> bytes | None:
        """``item``'s record without its closing brace, then ``"rank":``; None when the record
        cannot take the two keys at its end (it has a ``rank`` or ``score`` of its own)."""
        fragment = self._fragments[item]
        if fragment is None:
            record = self.records[item]
            if not record or "rank" in record or "score" in record:
                return None
            fragment = orjson.dumps(record, option=ORJSON_OPTIONS)[:-1] + b',"rank":'
            self._fragments[item] = fragment
        return fragment


class AnswerMemo:
    """The ``recommendations`` JSON of recent :class:`Ranked` answers, by object identity.

    A results-cache hit returns the very :class:`Ranked` object the miss stored, so its items
    array — the bulk of a 3 KB answer — is looked up instead of joined and its scores encoded
    again; every visitor without history shares one entry per options (most of a storefront's
    cached traffic). Segmented LRU: a new answer waits in ``probation`` (most are never asked
    again: distinct visitors, answers the cache did not admit) and moves to ``protected`` on its
    first repeat, so a stream of one-off answers cannot push the repeated ones out. Entries hold
    their :class:`Ranked` (an id is never reused while it is held) and go with the model's
    table; at most 768 of at most ``MEMO_MAX_BYTES`` each (12 MB; 3.4 MB at ``topk`` 10).
    Answers with ``explain`` are never repeated (not cached) and not remembered. Used from the
    event loop's thread only (single ``/recommend``), so no lock.
    """

    def __init__(self, probation: int = 256, protected: int = 512) -> None:
        self.sizes = (probation, protected)
        self.probation: dict[int, tuple[Ranked, bytes]] = {}
        self.protected: dict[int, tuple[Ranked, bytes]] = {}

    def get(self, ranked: Ranked) -> bytes | None:
        """The items JSON of ``ranked`` if remembered (and promoted or refreshed)."""
        key = id(ranked)
        entry = self.protected.pop(key, None) or self.probation.pop(key, None)
        if entry is None or entry[0] is not ranked:
            return None
        self.protected[key] = entry  # most recent last
        if len(self.protected) > self.sizes[1]:
            del self.protected[next(iter(self.protected))]
        return entry[1]

    def put(self, ranked: Ranked, items: bytes) -> None:
        """Remember a newly encoded answer (on probation)."""
        self.probation[id(ranked)] = (ranked, items)
        if len(self.probation) > self.sizes[0]:
            del self.probation[next(iter(self.probation))]


def record_json(engine: Engine) -> RecordJson:
    """The engine's fragment table (one per engine, i.e. per model version)."""
    table = _TABLES.get(engine)
    if table is None:
        table = _TABLES.setdefault(engine, RecordJson(engine.bundle.catalogue.records))
    return table


def items_json(result: Recommendation, table: RecordJson) -> bytes:
    """The ``recommendations`` array of ``result`` as JSON."""
    ranked = result.ranked
    if (
        ranked.explains is None
        and ranked.source is table.records
        and len(ranked.indices) < len(_RANKS)
    ):
        fragments = table._fragments
        parts: list[bytes] = []
        # scores encoded by orjson in one call (its float formatting), then split per item
        scores = orjson.dumps(ranked.scores)[1:-1].split(b",") if ranked.scores else []
        ranks = _RANKS[1 : len(scores) + 1]
        for rank, item, score in zip(ranks, ranked.indices, scores, strict=True):
            fragment = fragments[item] or table.fragment(item)
            if fragment is None:
                break
            parts += (fragment, rank, score, b"},")
        else:
            if not parts:
                return b"[]"
            parts[-1] = b"}]"
            return b"[" + b"".join(parts)
    return orjson.dumps(result.items, option=ORJSON_OPTIONS)


def answer_json(
    result: Recommendation,
    user_id: str | int,
    table: RecordJson,
    extra: Mapping[str, Any] | None = None,
    memo: bool = False,
) -> bytes:
    """``result.as_dict()`` with ``user_id`` as sent (an int stays an int) and then ``extra``'s
    keys, as JSON: byte for byte what ``orjson.dumps`` makes of that dict. ``memo`` (the event
    loop's single answers): the items array through ``table.answers``."""
    # the keys after user_id depend on the segment only: encoded once per segment
    middle = _SEGMENT_KEYS.get(result.segment)
    if middle is None:
        segment_keys = {
            "segment": result.segment,
            "strategy": result.strategy,
            "is_fallback": result.is_fallback,
            "fallback_method": result.fallback_method,
        }
        middle = b"," + orjson.dumps(segment_keys, option=ORJSON_OPTIONS)[1:-1]
        middle = _SEGMENT_KEYS.setdefault(result.segment, middle + b',"recommendations":')
    head = orjson.dumps(user_id, option=ORJSON_OPTIONS)
    tail = b"}" if not extra else b"," + orjson.dumps(extra, option=ORJSON_OPTIONS)[1:]
    ranked = result.ranked
    items = table.answers.get(ranked) if memo else None
    if items is None:
        items = items_json(result, table)
        if memo and ranked.explains is None and len(items) <= MEMO_MAX_BYTES:
            table.answers.put(ranked, items)
    return b"".join((b'{"user_id":', head, middle, items, tail))
