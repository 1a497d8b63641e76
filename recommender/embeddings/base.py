"""The text-encoder interface shared by every encoder, and its saved-state convention.

An encoder turns product texts (from :func:`recommender.text.build_product_texts`: normalised,
unsegmented) into float32 (n, d) rows of unit L2 norm, so a dot product is a cosine. Encoders that
learn from the catalogue (tfidf) are ``fit`` on it first; the fitted state is saved beside the
embeddings (``content_based_embeddings/text_encoder/``) so a query or a new product can later be
encoded into the same space with :func:`load_encoder`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from recommender.errors import EncoderError, ModelLoadError
from recommender.storage import atomic_write_json, read_json

STATE_FILE = "encoder.json"


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm as float32; all-zero rows stay zero (callers decide on those)."""
    out = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)


class TextEncoder(abc.ABC):
    """Texts -> float32 (n, dim) L2-normalised rows.

    Subclasses set ``kind`` (the registry name used by :func:`get_encoder`) and implement
    ``_fit``, ``_encode``, ``_state`` and ``_from_state``. The public methods check at the door.
    """

    kind: ClassVar[str]

    def __init__(self) -> None:
        self._fitted = False

    @property
    @abc.abstractmethod
    def name(self) -> str:
        """Readable model name for the embeddings metadata (e.g. ``tfidf-w12seg-c24-svd512``)."""

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Output dimension; known after ``fit`` for encoders that learn from the catalogue."""

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def params(self) -> dict[str, Any]:
        """The settings that shape the vectors (JSON-able), recorded in the embeddings metadata."""
        return {}

    def fit(self, texts: Sequence[str]) -> TextEncoder:
        """Learn whatever the encoder needs from the catalogue texts; returns ``self``."""
        texts = _check_texts(texts)
        if not texts:
            raise EncoderError(f"{self.kind} encoder: cannot fit on an empty list of texts.")
        self._fit(texts)
        self._fitted = True
        return self

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """float32 (len(texts), dim), rows L2-normalised; a text with no known token gives zeros."""
        if not self._fitted:
            raise EncoderError(f"{self.kind} encoder is not fitted: call fit() or load it first.")
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        out = l2_normalise(self._encode(texts))
        if out.shape != (len(texts), self.dim):
            raise EncoderError(
                f"{self.kind} encoder returned shape {out.shape}, "
                f"expected {(len(texts), self.dim)}."
            )
        return out

    def save(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write the fitted state into ``directory`` (its ``encoder.json`` last). Returns it.

        ``extra`` (JSON-able) is recorded in ``encoder.json``, e.g. the embedding_version it built.
        """
        if not self._fitted:
            raise EncoderError(f"{self.kind} encoder is not fitted; nothing to save.")
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = self._state(d)
        atomic_write_json(
            d / STATE_FILE, {"kind": self.kind, "name": self.name, **state, **(extra or {})}
        )
        return d

    @classmethod
    def load(cls, directory: str | Path) -> TextEncoder:
        """Re-create a fitted encoder from :meth:`save` output."""
        d = Path(directory)
        state = _read_state(d)
        encoder = cls._from_state(d, state)
        encoder._fitted = True
        return encoder

    @abc.abstractmethod
    def _fit(self, texts: list[str]) -> None: ...

    @abc.abstractmethod
    def _encode(self, texts: list[str]) -> np.ndarray: ...

    @abc.abstractmethod
    def _state(self, directory: Path) -> dict[str, Any]:
        """Write array files into ``directory`` and return the JSON-able rest of the state."""

    @classmethod
    @abc.abstractmethod
    def _from_state(cls, directory: Path, state: dict[str, Any]) -> TextEncoder: ...


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise EncoderError("encode/fit take a list of texts, not one string: wrap it in a list.")
    out = list(texts)
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise EncoderError(
            f"texts must be strings; items {bad[:5]} are {type(out[bad[0]]).__name__}. "
            "Build them with recommender.text.build_product_texts."
        )
    return out


def _read_state(directory: Path) -> dict[str, Any]:
    try:
        state = read_json(directory / STATE_FILE, "text encoder state")
    except (FileNotFoundError, ValueError) as exc:
        raise ModelLoadError(
            f"{exc}. Re-run `python -m recommender embed` to rebuild the encoder and embeddings."
        ) from exc
    if not isinstance(state, dict) or "kind" not in state:
        raise ModelLoadError(f"{directory / STATE_FILE}: not a text encoder state. Re-run embed.")
    return state


def read_encoder_kind(directory: str | Path) -> str:
    """The ``kind`` recorded in a saved encoder directory."""
    return str(_read_state(Path(directory))["kind"])
