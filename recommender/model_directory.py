"""One model version on disk: ``<registry>/<model_id>/{U.npy, V.npy, params.json, metadata.json}``
(plus ``B.npy``, EASE's ``(n, n)`` item-item weights, in an EASE model's directory).

Written through :func:`recommender.storage.staged_directory` (all files appear together or not at
all), loaded with ``allow_pickle=False`` after every file's sha256 is checked against the checksums
the registry recorded. The factors are memory-mapped read-only (``mmap_mode="r"``): the workers of
one host share one copy in the page cache instead of holding one each. Knows nothing of registry
entries (:mod:`recommender.registry` imports this).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.errors import ModelLoadError
from recommender.storage import atomic_save_npy, atomic_write_json, sha256_file, staged_directory


@dataclass(frozen=True)
class ModelFiles:
    """The verified contents of one model directory: factors (float32), params and metadata."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    params: dict[str, Any]
    metadata: dict[str, Any]
    item_item: np.ndarray | None = None  # EASE's B (V.EASE_FILE); None for factor models


def write_model_dir(
    target: Path,
    user_factors: np.ndarray,
    item_factors: np.ndarray,
    params: Mapping[str, Any],
    metadata: Mapping[str, Any],
    extra_json: Mapping[str, Any] | None = None,
    item_item: np.ndarray | None = None,
) -> dict[str, str]:
    """Write the model files into ``target`` atomically; returns ``{file: sha256}`` of all files."""
    with staged_directory(target) as stage:
        atomic_save_npy(stage / V.USER_FACTORS_FILE, np.asarray(user_factors, dtype=np.float32))
        atomic_save_npy(stage / V.ITEM_FACTORS_FILE, np.asarray(item_factors, dtype=np.float32))
        if item_item is not None:
            atomic_save_npy(stage / V.EASE_FILE, np.asarray(item_item, dtype=np.float32))
        atomic_write_json(stage / V.PARAMS_FILE, dict(params))
        atomic_write_json(stage / V.METADATA_FILE, dict(metadata))
        for name, obj in (extra_json or {}).items():
            atomic_write_json(stage / name, obj)
        checksums = {p.name: sha256_file(p) for p in sorted(stage.iterdir()) if p.is_file()}
    return checksums


def verify_files(directory: Path, checksums: Mapping[str, str], model_id: str) -> None:
    """Raise ModelLoadError unless every model file exists and matches its recorded sha256."""
    fix = (
        "Re-train it (`python -m recommender train`) or `registry rollback` to the previous model."
    )
    if not directory.is_dir():
        raise ModelLoadError(f"model {model_id}: directory {directory} is missing. {fix}")
    for name in V.MODEL_FILES:
        if name not in checksums:
            raise ModelLoadError(
                f"model {model_id}: registry.json has no checksum for {name}. {fix}"
            )
    for name, expected in checksums.items():
        path = directory / name
        if not path.is_file():
            raise ModelLoadError(f"model {model_id}: file {path} is missing. {fix}")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelLoadError(
                f"model {model_id}: checksum mismatch for {path} (recorded "
                f"{expected[:12]}…, file has {actual[:12]}…): the file is corrupt or was "
                f"changed after registration. {fix}"
            )


def _load_npy(path: Path, model_id: str) -> np.ndarray:
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ModelLoadError(f"model {model_id}: {path} is not a valid .npy file ({exc}).") from exc
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.floating):
        raise ModelLoadError(
            f"model {model_id}: {path} must be a 2-D float array, got {array.dtype} {array.shape}."
        )
    if array.dtype != np.float32 or not array.flags.c_contiguous or array.size == 0:
        return np.ascontiguousarray(array, dtype=np.float32)  # an old float64 file: a copy
    return np.asarray(array)  # a plain view of the map: indexing a np.memmap costs ~4 us more


def _load_json(path: Path, model_id: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"model {model_id}: {path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"model {model_id}: {path} must hold a JSON object.")
    return data


def read_model_dir(directory: Path, checksums: Mapping[str, str], model_id: str) -> ModelFiles:
    """Verify every file's checksum, then load the factors without pickle and check their shapes."""
    verify_files(directory, checksums, model_id)
    user_factors = _load_npy(directory / V.USER_FACTORS_FILE, model_id)
    item_factors = _load_npy(directory / V.ITEM_FACTORS_FILE, model_id)
    params = _load_json(directory / V.PARAMS_FILE, model_id)
    metadata = _load_json(directory / V.METADATA_FILE, model_id)
    if user_factors.shape[1] != item_factors.shape[1]:
        raise ModelLoadError(
            f"model {model_id}: U {user_factors.shape} and V {item_factors.shape} "
            "disagree on the factor count."
        )
    expected = (metadata.get("n_users"), metadata.get("n_items"))
    if expected != (user_factors.shape[0], item_factors.shape[0]):
        raise ModelLoadError(
            f"model {model_id}: metadata says {expected[0]} users × {expected[1]} items "
            f"but U is {user_factors.shape} and V is {item_factors.shape}."
        )
    item_item = None
    if V.EASE_FILE in checksums:
        item_item = _load_npy(directory / V.EASE_FILE, model_id)
        n_items = item_factors.shape[0]
        if item_item.shape != (n_items, n_items):
            raise ModelLoadError(
                f"model {model_id}: {V.EASE_FILE} is {item_item.shape}, expected "
                f"({n_items}, {n_items}) for its {n_items} items."
            )
    elif metadata.get("model_type") == V.MODEL_EASE:
        raise ModelLoadError(
            f"model {model_id}: an EASE model needs {V.EASE_FILE}, which registry.json does not "
            "list. Re-train it (`python -m recommender train`)."
        )
    return ModelFiles(user_factors, item_factors, params, metadata, item_item)
