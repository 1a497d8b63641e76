"""Normalisation: one form for every spelling of the same shop text."""

from __future__ import annotations

import math
import unicodedata

import pytest

from recommender.text import clean_text, expand_abbreviations, normalise_text


def test_decomposed_and_composed_input_normalise_identically() -> None:
    composed = "Sữa Rửa Mặt Dịu Nhẹ Cho Da Nhạy Cảm"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert (
        normalise_text(decomposed)
        == normalise_text(composed)
        == "sữa rửa mặt dịu nhẹ cho da nhạy cảm"
    )
    assert unicodedata.is_normalized("NFC", normalise_text(decomposed))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("srm cerave", "sữa rửa mặt cerave"),
        ("SRM CeraVe", "sữa rửa mặt cerave"),
        ("kcn, tdc và nhh", "kem chống nắng, tẩy da chết và nước hoa hồng"),
        ("cho dn/dk", "cho da nhờn/da khô"),
        ("dh dnc dm", "da hỗn hợp da nhạy cảm da mụn"),
        ("ko gây khô, k bết", "không gây khô, không bết"),
    ],
)
def test_abbreviations_expand_as_whole_words(raw: str, expected: str) -> None:
    assert normalise_text(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["srmx", "xsrm", "kcn2", "dnk", "srm-pro", "vitamin k", "Vitamin K", "100 k", "ko_dau"],
)
def test_abbreviation_inside_a_longer_token_is_left_alone(raw: str) -> None:
    assert expand_abbreviations(raw) == raw


def test_clean_text_strips_html_urls_emoji_and_control_characters() -> None:
    raw = "<p>Kem&nbsp;dưỡng 😍👍🏻\u200b ẩm</p> xem https://shop.vn/x?a=1 ngay!!!\x07 SPF50+ 30%"
    assert clean_text(raw) == "Kem dưỡng ẩm xem ngay! SPF50+ 30%"


def test_tone_placement_is_unified_only_on_open_syllables() -> None:
    assert clean_text("Hoà Thuỷ khoẻ") == "Hòa Thủy khỏe"
    assert clean_text("hoàn quý thuyền") == "hoàn quý thuyền"


@pytest.mark.parametrize("missing", [None, math.nan, "", "   ", float("nan")])
def test_missing_values_give_empty_text(missing: object) -> None:
    assert normalise_text(missing) == ""


def test_case_is_kept_when_asked() -> None:
    assert normalise_text("SRM  CeraVe ", lowercase=False) == "sữa rửa mặt CeraVe"
