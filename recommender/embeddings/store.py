"""``product_embeddings.pt``: the content-embedding artifact, written atomically, loaded safely.

Format (a plain torch dict, loadable with ``torch.load(weights_only=True)`` so no code runs):
``{"embeddings": float32 tensor (n, d), "product_ids": list[str], "metadata": dict}``.
``metadata["embedding_version"]`` is the first 16 hex digits of the sha256 of the embedding bytes
and the ids; it is re-checked on load.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recommender.errors import InvalidDataError, ModelLoadError
from recommender.storage import atomic_write

REQUIRED_KEYS = ("embeddings", "product_ids", "metadata")


@dataclass(frozen=True)
class ProductEmbeddings:
    """Row ``i`` of ``embeddings`` (float32, (n, d), unit rows) is product ``product_ids[i]``."""

    embeddings: np.ndarray
    product_ids: list[str]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def index(self) -> dict[str, int]:
        """product_id -> row."""
        return {pid: i for i, pid in enumerate(self.product_ids)}


def embedding_version(embeddings: np.ndarray, product_ids: list[str]) -> str:
    """16-hex sha256 over the float32 C-order bytes and the newline-joined ids."""
    digest = hashlib.sha256(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
    digest.update("\n".join(product_ids).encode("utf-8"))
    return digest.hexdigest()[:16]


def check_embeddings(embeddings: np.ndarray, product_ids: list[str], where: str) -> None:
    """The artifact invariants: 2-D float32, one unique id per row, finite, no all-zero row."""
    if embeddings.ndim != 2 or embeddings.shape[1] < 1:
        raise InvalidDataError(
            f"{where}: embeddings must be 2-D (n, d), got shape {embeddings.shape}."
        )
    if embeddings.dtype != np.float32:
        raise InvalidDataError(f"{where}: embeddings must be float32, got {embeddings.dtype}.")
    if embeddings.shape[0] != len(product_ids):
        raise InvalidDataError(
            f"{where}: {embeddings.shape[0]} embedding rows but {len(product_ids)} product ids."
        )
    if len(set(product_ids)) != len(product_ids):
        raise InvalidDataError(f"{where}: product ids are not unique.")
    if not np.isfinite(embeddings).all():
        raise InvalidDataError(f"{where}: embeddings contain NaN or infinite values.")
    zero = np.flatnonzero(~np.any(embeddings != 0, axis=1))
    if zero.size:
        raise InvalidDataError(
            f"{where}: {zero.size} all-zero rows (e.g. product {product_ids[zero[0]]})."
        )


def save_embeddings(
    path: str | Path, embeddings: np.ndarray, product_ids: list[str], metadata: dict[str, Any]
) -> Path:
    """Validate and write the .pt atomically; adds ``embedding_version`` and ``dim`` to metadata."""
    import torch

    ids = [str(p) for p in product_ids]
    check_embeddings(embeddings, ids, str(path))
    emb = np.ascontiguousarray(embeddings, dtype=np.float32)
    meta = dict(metadata)
    meta["dim"] = int(emb.shape[1])
    meta["embedding_version"] = embedding_version(emb, ids)
    payload = {"embeddings": torch.from_numpy(emb.copy()), "product_ids": ids, "metadata": meta}
    return atomic_write(path, lambda tmp: torch.save(payload, tmp))


def load_embeddings(path: str | Path) -> ProductEmbeddings:
    """Load and verify a .pt written by :func:`save_embeddings` (weights-only unpickling).

    Raises InvalidDataError when the file is missing, ModelLoadError when it is corrupt or breaks
    the contract (shape, dtype, ids, version checksum).
    """
    import torch

    p = Path(path)
    if not p.is_file():
        raise InvalidDataError(
            f"product embeddings not found at {p}. Run `python -m recommender embed` first."
        )
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated/foreign files
        raise ModelLoadError(
            f"{p} is not a readable embeddings file ({type(exc).__name__}). Re-run embed."
        ) from exc
    if not isinstance(payload, dict) or any(k not in payload for k in REQUIRED_KEYS):
        raise ModelLoadError(f"{p}: expected a dict with keys {REQUIRED_KEYS}. Re-run embed.")
    tensor, ids, meta = payload["embeddings"], payload["product_ids"], payload["metadata"]
    if (
        not isinstance(tensor, torch.Tensor)
        or not isinstance(ids, list)
        or not isinstance(meta, dict)
    ):
        raise ModelLoadError(
            f"{p}: embeddings/product_ids/metadata have the wrong types. Re-run embed."
        )
    emb = tensor.detach().cpu().numpy()
    ids = [str(x) for x in ids]
    try:
        check_embeddings(emb, ids, str(p))
    except InvalidDataError as exc:
        raise ModelLoadError(f"{exc} Re-run embed.") from exc
    expected = meta.get("embedding_version")
    if expected is not None and expected != embedding_version(emb, ids):
        raise ModelLoadError(
            f"{p}: embedding_version checksum mismatch (file altered). Re-run embed."
        )
    emb.setflags(write=False)
    return ProductEmbeddings(embeddings=emb, product_ids=ids, metadata=meta)
