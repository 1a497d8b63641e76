"""The transformers path end to end with a tiny random RoBERTa and the real PhoBERT tokenizer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.embeddings import (
    build_product_embeddings,
    embeddings_path,
    encoder_dir,
    get_encoder,
    load_embeddings,
    load_encoder,
)
from recommender.embeddings.transformers_encoder import TransformersEncoder
from recommender.errors import EncoderError

from .test_pipeline import PRODUCTS, write_catalogue

HIDDEN = 32
TEXTS = ["Sữa rửa mặt cho da dầu", "kcn cho dnc", "", "Kem chống nắng " * 200]


@pytest.fixture(scope="module")
def tiny_model(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer RoBERTa (hidden 32) + PhobertTokenizer saved to a temp dir."""
    files = shared_data / "phobert_tokenizer"
    if not (files / "vocab.txt").is_file() or not (files / "bpe.codes").is_file():
        pytest.skip(f"PhoBERT tokenizer files not found in {files}")
    import torch
    from transformers import PhobertTokenizer, RobertaConfig, RobertaModel

    torch.manual_seed(0)
    config = RobertaConfig(
        vocab_size=64001,
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=130,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
    )
    directory = tmp_path_factory.mktemp("tiny-phobert")
    RobertaModel(config).save_pretrained(directory)
    tokenizer = PhobertTokenizer(
        vocab_file=str(files / "vocab.txt"), merges_file=str(files / "bpe.codes")
    )
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def encoder(tiny_model: Path) -> TransformersEncoder:
    enc = get_encoder("transformers", model=str(tiny_model), batch_size=3, progress=False)
    assert isinstance(enc, TransformersEncoder)
    enc.fit(TEXTS)
    return enc


def test_shapes_unit_rows_and_segmented_input(encoder: TransformersEncoder) -> None:
    vectors = encoder.encode(TEXTS)
    assert vectors.shape == (4, HIDDEN)
    assert encoder.dim == HIDDEN
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder._segment  # PhoBERT tokenizer -> pyvi-segmented input
    assert encoder._max_length == 128  # 130 positions - RoBERTa's padding offset
    assert encoder._prepare(["kiểm soát dầu"]) == ["kiểm_soát dầu"]


def test_encoding_is_deterministic_and_independent_of_batching(
    encoder: TransformersEncoder, tiny_model: Path
) -> None:
    one_by_one = get_encoder("transformers", model=str(tiny_model), batch_size=1, progress=False)
    one_by_one.fit(TEXTS)
    np.testing.assert_allclose(encoder.encode(TEXTS), one_by_one.encode(TEXTS), atol=1e-5)
    np.testing.assert_array_equal(encoder.encode(TEXTS), encoder.encode(TEXTS))


def test_abbreviations_and_decomposed_unicode_give_the_same_vector(
    encoder: TransformersEncoder,
) -> None:
    import unicodedata

    vectors = encoder.encode(
        [
            "kem chống nắng cho da nhạy cảm",
            "kcn cho dnc",
            unicodedata.normalize("NFD", "kem chống nắng cho da nhạy cảm"),
        ]
    )
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)
    np.testing.assert_allclose(vectors[0], vectors[2], atol=1e-6)


def test_pipeline_end_to_end(tiny_model: Path, tmp_path: Path) -> None:
    directory = write_catalogue(tmp_path / "processed")
    path = build_product_embeddings(
        directory, encoder="transformers", model=str(tiny_model), batch_size=4, progress=False
    )
    loaded = load_embeddings(path)
    assert path == embeddings_path(directory)
    assert loaded.embeddings.shape == (len(PRODUCTS), HIDDEN)
    assert loaded.product_ids == [row[0] for row in PRODUCTS]
    assert loaded.metadata["encoder"] == "transformers"
    assert loaded.metadata["model_name"] == str(tiny_model)
    assert loaded.metadata["dim"] == HIDDEN
    assert loaded.metadata["n_empty_text"] == 3
    assert loaded.metadata["encoder_params"]["segmented_input"] is True
    reloaded = load_encoder(encoder_dir(directory))
    assert reloaded.dim == HIDDEN
    products_text = ["Sữa Rửa Mặt CeraVe"]
    assert reloaded.encode(products_text).shape == (1, HIDDEN)
    assert (directory / V.EMBEDDINGS_DIR / V.TEXT_ENCODER_DIR / "encoder.json").is_file()


def test_missing_model_is_an_encoder_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="does not exist"):
        get_encoder("transformers", model=str(tmp_path / "absent")).fit(["x"])
    empty = tmp_path / "empty-model"
    empty.mkdir()
    with pytest.raises(EncoderError, match="cannot load Hugging Face model .*never downloaded"):
        get_encoder("transformers", model=str(empty)).fit(["x"])
    with pytest.raises(EncoderError, match="never downloaded"):
        get_encoder("transformers", model="no-such-org/no-such-model").fit(["x"])


def test_progress_off_a_terminal_is_one_line_with_the_time(tiny_model: Path, capsys) -> None:
    enc = get_encoder("transformers", model=str(tiny_model), batch_size=2, progress=True)
    enc.fit(TEXTS)
    capsys.readouterr()
    enc.encode(TEXTS)
    err = capsys.readouterr().err
    assert "\r" not in err  # no bar redraws in a log
    (line,) = err.splitlines()
    assert line.startswith(f"encoded {len(TEXTS)} texts ({tiny_model}) in ")
    assert line.endswith(" s")
    quiet = get_encoder("transformers", model=str(tiny_model), batch_size=2, progress=False)
    quiet.fit(TEXTS)
    capsys.readouterr()
    quiet.encode(TEXTS)
    assert capsys.readouterr().err == ""
