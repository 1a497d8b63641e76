"""build_product_embeddings and `recsys embed`: the .pt contract and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from recommender import cli
from recommender import vocabulary as V
from recommender.embeddings import (
    build_product_embeddings,
    embeddings_path,
    encoder_dir,
    load_embeddings,
    load_encoder,
)
from recommender.errors import EmptyDataError, EncoderError, InvalidDataError
from recommender.text.product_text import TEXT_FIELDS

VERSION = "abc123"
PRODUCTS = [
    ("p10", "Sữa Rửa Mặt CeraVe", "CeraVe", "Sữa rửa mặt", ["da dầu"], "Ceramide", "Làm sạch sâu"),
    ("p02", "Sữa Rửa Mặt Cosrx", "Cosrx", "Sữa rửa mặt", ["da nhạy cảm"], None, "Dịu nhẹ"),
    ("p31", "Kem Chống Nắng Anessa", "Anessa", "Kem chống nắng", [], None, "Chống nước SPF50+"),
    ("p04", "Kem Chống Nắng Biore", "Biore", "Kem chống nắng", None, None, None),
    ("p05", "Nước Tẩy Trang Bioderma", "Bioderma", "Nước tẩy trang", ["da khô"], None, "Tẩy trang"),
    ("p06", "Mặt Nạ Innisfree", "Innisfree", "Mặt nạ", None, None, ""),
    ("p07", "Serum Klairs Vitamin C", "Klairs", "Serum", ["da mụn"], "Vitamin C", "Làm sáng da"),
    ("p08", None, None, None, None, None, None),
]


def write_catalogue(directory: Path, rows: list[tuple] = PRODUCTS) -> Path:
    """A processed dir holding only enriched_products.parquet (with its data_version)."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = [
        V.PRODUCT_ID,
        V.NAME,
        V.BRAND,
        V.CATEGORY,
        V.SKIN_TYPES,
        V.INGREDIENTS,
        V.DESCRIPTION,
    ]
    frame = pd.DataFrame(rows, columns=columns)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(
        {**(table.schema.metadata or {}), b"data_version": VERSION}
    )
    pq.write_table(table, directory / V.PRODUCTS_FILE)
    return directory


@pytest.fixture()
def embed_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI with only the embed command registered (other commands are not under test)."""
    monkeypatch.setattr(cli, "COMMANDS", {"embed": "embed"})


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = write_catalogue(tmp_path_factory.mktemp("processed"))
    build_product_embeddings(directory, encoder="tfidf", dim=16)
    return directory


def test_every_product_has_one_unit_row_in_canonical_order(built: Path) -> None:
    loaded = load_embeddings(embeddings_path(built))
    assert loaded.product_ids == [row[0] for row in PRODUCTS]
    assert loaded.embeddings.dtype == np.float32
    assert loaded.embeddings.shape == (len(PRODUCTS), loaded.dim)
    assert np.isfinite(loaded.embeddings).all()
    np.testing.assert_allclose(np.linalg.norm(loaded.embeddings, axis=1), 1.0, atol=1e-5)


def test_metadata_contract(built: Path) -> None:
    meta = load_embeddings(embeddings_path(built)).metadata
    assert meta["encoder"] == "tfidf"
    assert meta["model_name"].startswith("tfidf-")
    assert meta["dim"] == 7  # capped by the rank: 8 products, one without any text
    assert meta["text_fields"] == list(TEXT_FIELDS)
    assert meta["encoder_params"]["dim"] == 16
    assert meta["encoder_params"]["segment_words"] is True
    assert meta["data_version"] == VERSION
    assert meta["n_products"] == 8
    assert meta["n_empty_text"] == 3  # p04, p06, p08 have no skin type/ingredient/description
    assert meta["n_fallback"] == 1  # p08 has no text at all
    assert len(meta["embedding_version"]) == 16
    assert meta["created_at"].endswith("+00:00")


def test_empty_text_products_are_embedded_from_name_brand_category(built: Path) -> None:
    loaded = load_embeddings(embeddings_path(built))
    sim = loaded.embeddings @ loaded.embeddings.T
    np.fill_diagonal(sim, -1)
    idx = loaded.index()
    assert sim[idx["p04"]].argmax() == idx["p31"]  # sunscreen without description -> sunscreen


def test_saved_encoder_reproduces_the_rows(built: Path) -> None:
    encoder = load_encoder(encoder_dir(built))
    state = json.loads((encoder_dir(built) / "encoder.json").read_text(encoding="utf-8"))
    loaded = load_embeddings(embeddings_path(built))
    assert state["embedding_version"] == loaded.metadata["embedding_version"]
    query = encoder.encode(["Sữa Rửa Mặt CeraVe . Sữa Rửa Mặt CeraVe"])
    assert int((loaded.embeddings @ query[0]).argmax()) == 0


def test_rebuild_is_deterministic(built: Path, tmp_path: Path) -> None:
    other = write_catalogue(tmp_path / "again")
    build_product_embeddings(other, encoder="tfidf", dim=16)
    first = load_embeddings(embeddings_path(built))
    second = load_embeddings(embeddings_path(other))
    assert first.metadata["embedding_version"] == second.metadata["embedding_version"]


def test_missing_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidDataError, match="does not exist.*prepare"):
        build_product_embeddings(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidDataError, match="enriched_products.parquet not found"):
        build_product_embeddings(tmp_path / "empty")


def test_bad_encoder_or_model_writes_nothing(tmp_path: Path) -> None:
    directory = write_catalogue(tmp_path / "p")
    with pytest.raises(EncoderError, match="unknown encoder 'bert'"):
        build_product_embeddings(directory, encoder="bert")
    with pytest.raises(EncoderError, match="does not exist"):
        build_product_embeddings(
            directory, encoder="transformers", model=str(tmp_path / "no-model")
        )
    with pytest.raises(EncoderError, match="needs --model"):
        build_product_embeddings(directory, encoder="transformers")
    assert not (directory / V.EMBEDDINGS_DIR).exists()


def test_catalogue_without_any_text_is_refused(tmp_path: Path) -> None:
    directory = write_catalogue(tmp_path / "p", [("a", None, None, None, None, None, None)])
    with pytest.raises(EmptyDataError, match="no product"):
        build_product_embeddings(directory)
    assert not (directory / V.EMBEDDINGS_DIR).exists()


@pytest.mark.usefixtures("embed_cli")
def test_cli_embed_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = write_catalogue(tmp_path / "p")
    assert cli.main(["embed", "--processed", str(directory), "--dim", "4"]) == 0
    assert "8 products x 4" in capsys.readouterr().out
    payload = torch.load(embeddings_path(directory), weights_only=True)
    assert set(payload) == {"embeddings", "product_ids", "metadata"}
    assert tuple(payload["embeddings"].shape) == (8, 4)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--encoder", "word2vec"], "unknown encoder 'word2vec'"),
        (["--encoder", "transformers", "--model", "/no/such/model"], "does not exist"),
        (["--dim", "1"], "dim must be >= 2"),
    ],
)
@pytest.mark.usefixtures("embed_cli")
def test_cli_bad_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    directory = write_catalogue(tmp_path / "p")
    assert cli.main(["embed", "--processed", str(directory), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (directory / V.EMBEDDINGS_DIR).exists()


@pytest.mark.usefixtures("embed_cli")
def test_cli_missing_processed_dir_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["embed", "--processed", str(tmp_path / "absent")]) == 2
    assert "prepare" in capsys.readouterr().err


def test_embedded_dir_fixture_covers_the_demo_catalogue(request: pytest.FixtureRequest) -> None:
    try:
        directory: Path = request.getfixturevalue("embedded_dir")
    except pytest.FixtureLookupError:  # the processed_dir fixture is not there yet
        pytest.skip("processed_dir fixture not available")
    products = pd.read_parquet(directory / V.PRODUCTS_FILE)
    loaded = load_embeddings(embeddings_path(directory))
    assert loaded.product_ids == products[V.PRODUCT_ID].astype(str).tolist()
    assert loaded.metadata["n_fallback"] == 0
