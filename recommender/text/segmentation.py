"""Vietnamese word segmentation with pyvi (offline CRF model shipped in its wheel).

``"kiểm soát dầu"`` -> ``"kiểm_soát dầu"``: multi-syllable words become one token, which is what
PhoBERT's vocabulary and word-level TF-IDF expect. pyvi costs ~5 ms per 1,000 characters, so
results are memoised per sentence in a bounded LRU cache (repeated fields and boilerplate
sentences are segmented once).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Final

CACHE_SIZE: Final = 50_000


@lru_cache(maxsize=1)
def _tokenizer():  # type: ignore[no-untyped-def]
    # Imported lazily: loading pyvi's CRF model takes ~0.3 s and most commands never segment.
    from pyvi import ViTokenizer

    return ViTokenizer


# Split after sentence punctuation (or the " . " that joins product-text fields).
_SENTENCE_END = re.compile(r"\s*([.!?;]+)\s+")


@lru_cache(maxsize=CACHE_SIZE)
def _segment_sentence(sentence: str) -> str:
    # pyvi on the cased text (its default): on Hasaki, segmenting the lower-cased text instead
    # lowered name->description MRR (0.848 vs 0.862) and the 10-NN category share (0.752 vs
    # 0.759) in scripts/embedding_quality.py.
    return str(_tokenizer().tokenize(sentence))


def segment(text: str) -> str:
    """Word-segment one text; syllables of one word are joined by "_". Empty in, empty out.

    The text is segmented sentence by sentence through the cache: product texts repeat their name
    (field weights) and shop descriptions repeat boilerplate sentences, which then cost nothing.
    """
    if not text or not text.strip():
        return ""
    parts = _SENTENCE_END.split(text.strip())  # [sentence, punctuation, sentence, ...]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
        elif part.strip():
            out.append(_segment_sentence(part))
    return " ".join(out)


def segment_many(texts: Iterable[str]) -> list[str]:
    """:func:`segment` over ``texts``, in order."""
    return [segment(t) for t in texts]


def cache_info() -> str:
    """The segmentation cache's hits/misses/size, for logs."""
    return str(_segment_sentence.cache_info())
