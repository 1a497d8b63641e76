"""pyvi word segmentation (offline)."""

from __future__ import annotations

from recommender.text import segment, segment_many
from recommender.text.segmentation import _segment_sentence


def test_multi_syllable_words_are_joined() -> None:
    assert segment("kiểm soát dầu") == "kiểm_soát dầu"


def test_blank_text_segments_to_empty() -> None:
    assert segment("") == ""
    assert segment("   ") == ""


def test_segment_many_keeps_order_and_uses_the_cache() -> None:
    texts = ["kiểm soát dầu", "", "kiểm soát dầu"]
    assert segment_many(texts) == ["kiểm_soát dầu", "", "kiểm_soát dầu"]
    hits = _segment_sentence.cache_info().hits
    assert segment("kiểm soát dầu . kiểm soát dầu! ok") == "kiểm_soát dầu . kiểm_soát dầu ! ok"
    assert _segment_sentence.cache_info().hits == hits + 2
