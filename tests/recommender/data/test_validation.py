"""Row- and column-level validation helpers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recommender import vocabulary as V
from recommender.data.validation import (
    clean_products,
    find_file,
    id_strings,
    parse_ratings,
    parse_timestamps,
    read_table,
)
from recommender.errors import EmptyDataError, InvalidDataError


def test_ids_become_clean_strings() -> None:
    assert id_strings(pd.Series([12.0, np.nan, 7.0])).tolist() == ["12", None, "7"]
    assert id_strings(pd.Series([" a ", "", None])).tolist() == ["a", None, None]
    assert id_strings(pd.Series([1.5])).tolist() == ["1.5"]


def test_timestamps_accept_iso_epoch_and_aware_values() -> None:
    parsed = parse_timestamps(
        pd.Series(["2024-01-01T10:00:00+07:00", "2024-01-01 03:00:00", "bad"]), "f", "ts"
    )
    assert parsed.tolist()[:2] == [pd.Timestamp("2024-01-01 03:00:00")] * 2 and pd.isna(
        parsed.iloc[2]
    )
    assert str(parsed.dtype) == "datetime64[ns]"
    epoch = parse_timestamps(pd.Series([0, 86_400]), "f", "ts")
    assert epoch.tolist() == [pd.Timestamp("1970-01-01"), pd.Timestamp("1970-01-02")]


def test_a_mostly_unparseable_column_is_an_error_a_few_bad_values_are_rows() -> None:
    few_bad = parse_timestamps(
        pd.Series(["01/02/2024 10:00", "30/11/-0001 0:00", "02/02/2024 9:05"]),
        "Danh_gia.csv",
        "ngay",
        "%d/%m/%Y %H:%M",
    )
    assert few_bad.isna().tolist() == [False, True, False]
    with pytest.raises(
        InvalidDataError, match=r"Danh_gia.csv: column 'ngay' .*expected %d/%m/%Y %H:%M"
    ):
        parse_timestamps(
            pd.Series(["2024-02-01", "2024-02-02"]), "Danh_gia.csv", "ngay", "%d/%m/%Y %H:%M"
        )
    with pytest.raises(InvalidDataError, match="column 'stars' is not numeric"):
        parse_ratings(pd.Series(["good", "bad", "5"]), "f.csv", "stars")


def test_products_dedup_and_defaults() -> None:
    frame = pd.DataFrame({V.PRODUCT_ID: ["a", "a", None, "b"], V.NAME: ["x", "y", "z", None]})
    products, dropped = clean_products(frame, "p.csv")
    assert products[V.PRODUCT_ID].tolist() == ["a", "b"]
    assert products[V.NAME].tolist() == ["x", ""]
    assert dict(dropped) == {"duplicate_product_id": 1, "missing_id": 1}
    assert products[V.SKIN_TYPES].tolist() == [[], []] and products[V.NUM_SOLD].tolist() == [0, 0]


def test_files_and_columns_are_named_in_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="expected one of a.csv, b.csv"):
        find_file(tmp_path, ("a.csv", "b.csv"), "thing")
    (tmp_path / "t.csv").write_text("x,y\n1,2\n", encoding="utf-8")
    with pytest.raises(InvalidDataError, match=r"t.csv: required column 'z' is missing"):
        read_table(tmp_path / "t.csv", ("x", "z"))
    (tmp_path / "e.csv").write_text("x,z\n", encoding="utf-8")
    with pytest.raises(EmptyDataError, match="no data rows"):
        read_table(tmp_path / "e.csv", ("x", "z"))
