"""Read ``product_embeddings.pt`` without importing torch (serving start-up and memory).

Importing torch (and, through ``recommender.embeddings``, scikit-learn) costs a serving worker about
2–3 s of start-up and ~260 MB of resident memory, only to read one float32 matrix. The file is a
torch zip archive: ``data.pkl`` (a pickle whose tensors point at raw little-endian storages in
``data/<key>``). A restricted unpickler that knows exactly the four globals such a file uses
(``_rebuild_tensor_v2``, a storage type, ``OrderedDict``) rebuilds it with numpy; anything else
is refused, so no code from the file ever runs. The ``embedding_version`` checksum is re-checked as
:func:`recommender.embeddings.store.load_embeddings` does.

:func:`read_embeddings` returns ``None`` when the file is not in this shape, and the caller falls
back to the torch loader — correctness never depends on this shortcut.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

_STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
}


@dataclass(frozen=True)
class _StorageType:
    dtype: Any


def _rebuild_tensor(
    storage: np.ndarray, offset: int, size: tuple[int, ...], stride: tuple[int, ...], *_rest: object
) -> np.ndarray:
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[offset:], shape=tuple(size), strides=tuple(s * item for s in stride)
    )
    return np.array(view)


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str) -> None:
        import io

        super().__init__(io.BytesIO(data))
        self._archive, self._prefix = archive, prefix

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an embeddings file")

    def persistent_load(self, pid: Any) -> np.ndarray:
        kind, storage_type, key, _location, numel = pid
        if kind != "storage" or not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        raw = self._archive.read(f"{self._prefix}data/{key}")
        return np.frombuffer(raw, dtype=np.dtype(storage_type.dtype).newbyteorder("<"))[:numel]


def _version(embeddings: np.ndarray, product_ids: list[str]) -> str:
    digest = hashlib.sha256(np.ascontiguousarray(embeddings, dtype=np.float32).tobytes())
    digest.update("\n".join(product_ids).encode("utf-8"))
    return digest.hexdigest()[:16]


def read_embeddings(path: str | Path) -> tuple[np.ndarray, list[str], dict[str, Any]] | None:
    """``(embeddings (n, d) float32, product_ids, metadata)`` or ``None`` when the shortcut does
    not apply (not a torch zip, unexpected content, checksum mismatch): use the torch loader."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
            if len(pickles) != 1:
                return None
            prefix = pickles[0][: -len("data.pkl")]
            byteorder = f"{prefix}byteorder"
            if byteorder in archive.namelist() and archive.read(byteorder).strip() != b"little":
                return None
            payload = _Unpickler(archive.read(pickles[0]), archive, prefix).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, ValueError, TypeError, KeyError):
        return None
    if not isinstance(payload, dict):
        return None
    embeddings, ids, meta = (payload.get(k) for k in ("embeddings", "product_ids", "metadata"))
    if not isinstance(embeddings, np.ndarray) or embeddings.dtype != np.float32:
        return None
    if embeddings.ndim != 2 or not isinstance(ids, list) or not isinstance(meta, dict):
        return None
    ids = [str(x) for x in ids]
    if len(ids) != embeddings.shape[0]:
        return None
    expected = meta.get("embedding_version")
    if expected is not None and expected != _version(embeddings, ids):
        return None  # the torch loader reports the mismatch with its own message
    embeddings.setflags(write=False)
    return embeddings, ids, dict(meta)
