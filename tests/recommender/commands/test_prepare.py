"""``recsys prepare``: success; bad input -> one clear message, exit 2, outputs untouched."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from recommender import cli
from recommender import vocabulary as V

DATA_COMMANDS = {"demo-data": "demo_data", "prepare": "prepare"}
GOOD_PRODUCTS = "product_id,name\np1,Sữa Rửa Mặt CeraVe\np2,Serum Klairs\n"
GOOD_INTERACTIONS = (
    "user_id,product_id,rating,timestamp\n"
    "u1,p1,5,2024-01-01 10:00:00\nu1,p2,4,2024-01-02 10:00:00\nu2,p1,5,2024-01-03 10:00:00\n"
)


@pytest.fixture(autouse=True)
def _data_commands_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", DATA_COMMANDS)


@pytest.fixture()
def previous_output(processed_dir: Path, tmp_path: Path) -> dict[str, bytes]:
    """An output folder holding a previous successful run (a copy of ``processed_dir``)."""
    out = tmp_path / "out"
    out.mkdir()
    for name in V.PROCESSED_FILES:
        shutil.copy(processed_dir / name, out / name)
    return {name: (out / name).read_bytes() for name in V.PROCESSED_FILES}


def _raw(
    tmp_path: Path,
    products: str | None = GOOD_PRODUCTS,
    interactions: str | None = GOOD_INTERACTIONS,
) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    if products is not None:
        (raw / "products.csv").write_text(products, encoding="utf-8")
    if interactions is not None:
        (raw / "interactions.csv").write_text(interactions, encoding="utf-8")
    return raw


def _fails(
    args: list[str], tmp_path: Path, previous: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> str:
    code = cli.main(["prepare", *args, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    out = tmp_path / "out"
    assert {name: (out / name).read_bytes() for name in V.PROCESSED_FILES} == previous
    assert sorted(p.name for p in out.iterdir()) == sorted(V.PROCESSED_FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".staging")]
    return errors[0]


def test_prepare_demo_end_to_end(
    raw_demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "processed"
    assert (
        cli.main(["prepare", "--source", "demo", "--input", str(raw_demo_dir), "--out", str(out)])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(V.PROCESSED_FILES)
    assert "360 trainable" in capsys.readouterr().out


def test_missing_file(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(tmp_path, interactions=None)
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert f"canonical interactions file not found in {raw}" in message
    assert "interactions.parquet, interactions.csv" in message


def test_missing_input_directory(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    message = _fails(
        ["--source", "hasaki", "--input", str(tmp_path / "nope")], tmp_path, previous_output, capsys
    )
    assert "does not exist" in message and "Hasaki product file" in message


def test_missing_column(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(tmp_path, interactions="user_id,product_id,timestamp\nu1,p1,2024-01-01\n")
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert f"{raw / 'interactions.csv'}: required column 'rating' is missing" in message


def test_missing_column_in_a_raw_shop_layout(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "San_pham.csv").write_text(
        "ma_san_pham,ten_san_pham,gia_ban\n1,Serum Klairs,100000\n", encoding="utf-8"
    )
    (raw / "Danh_gia.csv").write_text(
        "ma_khach_hang,ngay_binh_luan,gio_binh_luan,ma_san_pham\n1,01/02/2024,10:00,1\n",
        encoding="utf-8",
    )
    message = _fails(["--source", "hasaki", "--input", str(raw)], tmp_path, previous_output, capsys)
    assert "Danh_gia.csv: required column 'so_sao' is missing" in message


def test_unparseable_date_column(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(
        tmp_path,
        interactions="user_id,product_id,rating,timestamp\nu1,p1,5,yesterday\nu2,p1,5,last week\n",
    )
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert f"{raw / 'interactions.csv'}: column 'timestamp' is not a parseable date/time" in message
    assert "expected ISO 8601" in message


def test_unparseable_date_column_in_shopee_layout(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "data_product.csv").write_text(
        "product_id,product_name\n0,Sữa rửa mặt Simple\n", encoding="utf-8"
    )
    (raw / "data_reviews_purchase.csv").write_text(
        "user_id,product_id,rating,cmt_date\n1,0,5,06/01/2023\n2,0,4,07/01/2023\n", encoding="utf-8"
    )
    message = _fails(["--source", "shopee", "--input", str(raw)], tmp_path, previous_output, capsys)
    assert (
        "column 'cmt_date' is not a parseable date/time" in message
        and "%Y-%m-%d %H:%M:%S" in message
    )


def test_empty_dataset(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(tmp_path, interactions="user_id,product_id,rating,timestamp\n")
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert "interactions.csv has no data rows: the dataset is empty" in message


def test_zero_byte_file(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(tmp_path, products="")
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert "products.csv is empty" in message


def test_only_bad_rows_is_an_empty_dataset(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(
        tmp_path,
        interactions="user_id,product_id,rating,timestamp\nu1,p1,9,2024-01-01\nu2,p7,5,2024-01-01\n",
    )
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert "no valid interactions left" in message and "rating_out_of_range" in message


def test_unreadable_file(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    raw = _raw(tmp_path, products=None)
    (raw / "products.parquet").write_bytes(b"not a parquet file")
    message = _fails(
        ["--source", "canonical", "--input", str(raw)], tmp_path, previous_output, capsys
    )
    assert f"{raw / 'products.parquet'} is not a readable parquet file" in message


def test_unknown_source(
    tmp_path: Path, previous_output: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    message = _fails(
        ["--source", "tiki", "--input", str(tmp_path)], tmp_path, previous_output, capsys
    )
    assert (
        message == "error: unknown source 'tiki': expected one of demo, shopee, hasaki, canonical."
    )


def test_good_run_replaces_previous_output(
    tmp_path: Path, previous_output: dict[str, bytes]
) -> None:
    raw = _raw(tmp_path)
    assert (
        cli.main(
            [
                "prepare",
                "--source",
                "canonical",
                "--input",
                str(raw),
                "--out",
                str(tmp_path / "out"),
            ]
        )
        == 0
    )
    interactions = pd.read_parquet(tmp_path / "out" / V.INTERACTIONS_FILE)
    assert sorted(interactions[V.USER_ID]) == ["u1", "u1", "u2"]
