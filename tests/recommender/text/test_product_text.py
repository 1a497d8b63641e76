"""The embedded product string: weighted fields, missing values, bounded length."""

from __future__ import annotations

import numpy as np
import pandas as pd

from recommender import vocabulary as V
from recommender.text import build_head_texts, build_product_texts, has_body_text
from recommender.text.product_text import MAX_DESCRIPTION_CHARS, record_text


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            V.PRODUCT_ID: ["p1", "p2", "p3"],
            V.NAME: ["SRM CeraVe", "Kem Chống Nắng Anessa", None],
            V.BRAND: ["CeraVe", np.nan, ""],
            V.CATEGORY: ["Sữa rửa mặt", "kcn", None],
            V.SKIN_TYPES: [np.array(["da dầu", "da mụn"]), None, []],
            V.INGREDIENTS: ["Ceramide", None, np.nan],
            V.DESCRIPTION: ["Làm sạch <b>dịu nhẹ</b> 😍", "", None],
        }
    )


def test_fields_are_weighted_normalised_and_not_segmented() -> None:
    texts = build_product_texts(_frame())
    assert texts[0] == (
        "sữa rửa mặt CeraVe . sữa rửa mặt CeraVe . sữa rửa mặt CeraVe . CeraVe . CeraVe . "
        "Sữa rửa mặt . Sữa rửa mặt . da dầu, da mụn . Ceramide . Làm sạch dịu nhẹ"
    )
    assert texts[1] == (
        "Kem Chống Nắng Anessa . Kem Chống Nắng Anessa . Kem Chống Nắng Anessa . "
        "kem chống nắng . kem chống nắng"
    )
    assert texts[2] == ""
    assert "_" not in "".join(texts)


def test_missing_columns_are_allowed() -> None:
    frame = pd.DataFrame({V.PRODUCT_ID: ["a", "b"], V.NAME: ["Mặt Nạ", "Toner"]})
    assert build_product_texts(frame) == ["Mặt Nạ . Mặt Nạ . Mặt Nạ", "Toner . Toner . Toner"]
    assert build_product_texts(pd.DataFrame({V.PRODUCT_ID: ["x"]})) == [""]


def test_head_texts_and_body_flags() -> None:
    frame = _frame()
    assert build_head_texts(frame)[1] == build_product_texts(frame)[1]
    assert has_body_text(frame).tolist() == [True, False, False]


def test_long_descriptions_are_cut_at_a_word_boundary() -> None:
    words = "dưỡng ẩm " * 400
    frame = pd.DataFrame({V.NAME: ["x"], V.DESCRIPTION: [words]})
    description = build_product_texts(frame)[0].split(" . ")[-1]
    assert len(description) <= MAX_DESCRIPTION_CHARS
    assert len(description) > MAX_DESCRIPTION_CHARS - 10
    assert description.split(" ")[-1] in {"dưỡng", "ẩm"}


def test_record_text_is_build_product_texts_of_one_row():
    row = {
        V.NAME: "Sữa rửa mặt  CeraVe",
        V.BRAND: "CeraVe",
        V.CATEGORY: "Sữa rửa mặt",
        V.SKIN_TYPES: ["Da dầu", "Da nhạy cảm"],
    }
    assert record_text(row) == build_product_texts(pd.DataFrame([row]))[0]
    assert record_text({}) == ""
