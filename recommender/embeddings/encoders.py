"""Encoder lookup by name, and re-creating a saved (fitted) encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from recommender.embeddings.base import TextEncoder, read_encoder_kind
from recommender.embeddings.tfidf import TfidfEncoder
from recommender.embeddings.transformers_encoder import TransformersEncoder
from recommender.errors import EncoderError, ModelLoadError

ENCODERS: dict[str, type[TextEncoder]] = {
    TfidfEncoder.kind: TfidfEncoder,
    TransformersEncoder.kind: TransformersEncoder,
}


def get_encoder(
    name: str,
    *,
    model: str | Path | None = None,
    batch_size: int = 32,
    dim: int = 512,
    **options: Any,
) -> TextEncoder:
    """A new (unfitted) encoder: ``tfidf`` (uses ``dim``) or ``transformers`` (uses ``model``,
    ``batch_size``). Extra ``options`` go to the encoder's constructor (e.g. ``char_ngrams=None``,
    ``device="cuda"``). Unknown names and misplaced options raise EncoderError.
    """
    key = str(name).strip().lower()
    if key not in ENCODERS:
        raise EncoderError(
            f"unknown encoder '{name}'; choose one of: {', '.join(sorted(ENCODERS))}."
        )
    try:
        if key == TfidfEncoder.kind:
            if model:
                raise EncoderError(
                    f"--model {model} is only used by the transformers encoder; drop it or pass "
                    "--encoder transformers."
                )
            return TfidfEncoder(dim=dim, **options)
        return TransformersEncoder(model=model or "", batch_size=batch_size, **options)
    except TypeError as exc:
        raise EncoderError(f"invalid option for the {key} encoder: {exc}.") from exc


def load_encoder(directory: str | Path) -> TextEncoder:
    """The fitted encoder saved in ``directory`` (``content_based_embeddings/text_encoder/``)."""
    kind = read_encoder_kind(directory)
    if kind not in ENCODERS:
        raise ModelLoadError(f"{directory}: unknown encoder kind '{kind}'. Re-run embed.")
    return ENCODERS[kind].load(directory)
