"""The model registry: ``<root>/registry.json`` + one directory per model version.

``registry.json``::

    {"current": model_id | null, "history": [previous current ids, oldest first],
     "models": {model_id: {model_id, model_type, path, created_at, data_version, embedding_version,
                           hyperparameters, metrics, checksums: {file: sha256}, status}}}

Every read-modify-write holds ``storage.file_lock`` on ``<root>/.registry.lock`` and replaces
``registry.json`` atomically, so two writers (two ``train`` runs) both land and a reader never sees
half a file. Model directories are complete before the registry names them. Under the lock, each
write first removes what writers killed mid-write left behind (``.registry.json.<pid>.*.tmp`` and
model ``*.staging`` directories whose pid is gone). An entry's ``path`` must stay inside ``<root>``.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recommender import vocabulary as V
from recommender.errors import ModelLoadError, QualityGateError, RegistryError, UnknownModelError
from recommender.model_directory import read_model_dir, write_model_dir
from recommender.storage import (
    STAGING_SUFFIX,
    TEMP_SUFFIX,
    atomic_write_json,
    file_lock,
    read_json,
    remove_stale_temp_files,
)

__all__ = ["LoadedModel", "ModelRecord", "Registry", "load_model_dir"]


@dataclass(frozen=True)
class ModelRecord:
    """A registry entry. ``path`` is the model directory (absolute); JSON stores it relative."""

    model_id: str
    model_type: str
    path: str
    created_at: str
    data_version: str
    embedding_version: str | None
    hyperparameters: dict[str, Any]
    metrics: dict[str, Any]
    checksums: dict[str, str]
    status: str

    @classmethod
    def from_json(cls, entry: Mapping[str, Any], root: Path) -> ModelRecord:
        return cls(
            model_id=str(entry["model_id"]),
            model_type=str(entry["model_type"]),
            path=str((root / str(entry["path"])).resolve()),
            created_at=str(entry["created_at"]),
            data_version=str(entry["data_version"]),
            embedding_version=entry.get("embedding_version"),
            hyperparameters=dict(entry.get("hyperparameters") or {}),
            metrics=dict(entry.get("metrics") or {}),
            checksums=dict(entry.get("checksums") or {}),
            status=str(entry.get("status", V.STATUS_CANDIDATE)),
        )

    @property
    def gate_value(self) -> float | None:
        """Test NDCG@10 of the trainable segment (hybrid), the quality gate's metric."""
        value = self.metrics.get(V.GATE_METRIC)
        return None if value is None else float(value)


@dataclass(frozen=True)
class LoadedModel:
    """A verified model version: factors (float32) plus its params and metadata."""

    record: ModelRecord
    user_factors: np.ndarray
    item_factors: np.ndarray
    params: dict[str, Any]
    metadata: dict[str, Any]
    item_item: np.ndarray | None = None  # EASE's (n, n) B; None for factor models


def load_model_dir(record: ModelRecord, expected_data_version: str | None = None) -> LoadedModel:
    """Verify checksums and versions, then load the factors of ``record`` without pickle."""
    if expected_data_version is not None and record.data_version != expected_data_version:
        raise ModelLoadError(
            f"model {record.model_id} was trained on data version {record.data_version} but the "
            f"processed data is version {expected_data_version}. Re-train on the current data "
            "(`python -m recommender train`) or restore the matching processed files."
        )
    files = read_model_dir(Path(record.path), record.checksums, record.model_id)
    return LoadedModel(
        record,
        files.user_factors,
        files.item_factors,
        files.params,
        files.metadata,
        files.item_item,
    )


logger = logging.getLogger(__name__)

# A model id names its directory: one path component, no separators, no leading dot.
MODEL_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# Model staging directories are written outside the registry lock (by concurrent `train` runs),
# so one whose writer looks gone is still given this long (a writer in another pid namespace).
STAGING_GRACE_S = 600.0


def new_model_id(model_type: str) -> str:
    """``<type>-<UTC timestamp>-<random hex>``: sortable and unique across concurrent writers."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{model_type}-{stamp}-{secrets.token_hex(3)}"


class Registry:
    """Read and change the registry under ``root`` (default ``artifacts/cf``)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.file = self.root / V.REGISTRY_FILE
        self.lock_file = self.root / V.REGISTRY_LOCK_FILE

    # --- reading ------------------------------------------------------------------------------
    def _read(self) -> dict[str, Any]:
        if not self.file.exists():
            return {"current": None, "history": [], "models": {}}
        try:
            state = read_json(self.file, "model registry")
        except (OSError, ValueError) as exc:
            raise RegistryError(
                f"{exc}. Restore it from a backup or delete it and re-run `python -m recommender "
                "build`/`train` to register a model again."
            ) from exc
        if (
            not isinstance(state, dict)
            or not isinstance(state.get("models"), dict)
            or not isinstance(state.get("history", []), list)
        ):
            raise RegistryError(
                f"{self.file}: expected an object with 'current', 'history' and 'models'. "
                "Restore it from a backup or delete it and re-run training."
            )
        state.setdefault("history", [])
        state.setdefault("current", None)
        return state

    def _record(self, state: Mapping[str, Any], model_id: str) -> ModelRecord:
        entry = state["models"].get(model_id)
        if entry is None:
            known = ", ".join(sorted(state["models"])) or "none"
            raise UnknownModelError(
                f"model {model_id!r} is not in {self.file} (known models: {known}). "
                "Run `python -m recommender registry list`."
            )
        try:
            record = ModelRecord.from_json(entry, self.root)
        except (KeyError, TypeError) as exc:
            raise RegistryError(f"{self.file}: entry {model_id!r} is malformed ({exc}).") from exc
        self._check_confined(model_id, entry["path"], Path(record.path))
        return record

    def _check_confined(self, model_id: str, stored: object, directory: Path) -> None:
        """Refuse an entry whose ``path`` (after ``..`` and symlinks) leaves the registry root."""
        root = self.root.resolve()
        if directory != root and directory.is_relative_to(root):
            return
        raise RegistryError(
            f"{self.file}: entry {model_id!r} has path {stored!r}, which leaves the registry "
            f"directory {self.root}; refusing to load it. A model's path is its directory inside "
            f"the registry (normally its id, {model_id!r}): fix the entry, or re-register the "
            "model with `python -m recommender train`."
        )

    def history(self) -> list[str]:
        """Previous current model ids, oldest first (``rollback`` returns to the last one)."""
        state = self._read()
        return [str(mid) for mid in state["history"] if mid in state["models"]]

    def list(self) -> list[ModelRecord]:
        """Every registered model, oldest first."""
        state = self._read()
        records = [self._record(state, mid) for mid in state["models"]]
        return sorted(records, key=lambda r: (r.created_at, r.model_id))

    def get(self, model_id: str) -> ModelRecord:
        """The record of ``model_id`` (UnknownModelError when absent)."""
        return self._record(self._read(), model_id)

    def current(self) -> ModelRecord | None:
        """The current model, None when nothing was promoted yet."""
        state = self._read()
        current = state.get("current")
        if current is None:
            return None
        if current not in state["models"]:
            raise RegistryError(
                f"{self.file} names current model {current!r}, which is not among its models. "
                "Run `python -m recommender registry promote ID` (or rollback) to repair it."
            )
        return self._record(state, current)

    def current_marker(self) -> str | None:
        """Cheap fingerprint of the registry for polling; None when there is no readable registry.

        Changes whenever ``registry.json`` is replaced (every write is a rename, so mtime_ns and the
        inode change). Never raises.
        """
        try:
            stat = self.file.stat()
        except OSError:
            return None
        try:
            current = self._read().get("current")
        except Exception:  # noqa: BLE001 - a poller must never crash; load() reports the cause
            current = "?"
        return f"{current}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"

    def load(
        self, model_id: str | None = None, *, expected_data_version: str | None = None
    ) -> LoadedModel:
        """Load ``model_id`` (default: the current model) after checking checksums and versions."""
        try:
            record = self.get(model_id) if model_id is not None else self.current()
        except UnknownModelError as exc:
            raise ModelLoadError(str(exc)) from exc
        except RegistryError as exc:
            raise ModelLoadError(str(exc)) from exc
        if record is None:
            raise ModelLoadError(
                f"no current model in {self.file}. Run `python -m recommender build` (or train and "
                "`registry promote ID`)."
            )
        return load_model_dir(record, expected_data_version)

    # --- writing ------------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        """Hold the lock, yield the state, write it back atomically when the block succeeds."""
        self.root.mkdir(parents=True, exist_ok=True)
        with file_lock(self.lock_file):
            self._remove_stale_temp_files()
            state = self._read()
            yield state
            atomic_write_json(self.file, state)

    def _remove_stale_temp_files(self) -> None:
        """Delete the litter of writers killed between write and rename (caller holds the lock).

        Every registry.json writer holds the lock, so its temporary files are stale as soon as
        their pid is gone; model staging directories get :data:`STAGING_GRACE_S` on top.
        """
        try:
            removed = remove_stale_temp_files(self.root, f".{self.file.name}.", TEMP_SUFFIX)
            removed += remove_stale_temp_files(
                self.root, ".", STAGING_SUFFIX, min_age_s=STAGING_GRACE_S
            )
        except OSError as exc:  # cleaning up must never block a registry write
            logger.warning("could not remove stale temporary files in %s: %s", self.root, exc)
            return
        for path in removed:
            logger.info("removed %s, left by an interrupted registry write", path)

    def register(
        self,
        *,
        model_type: str,
        user_factors: np.ndarray,
        item_factors: np.ndarray,
        params: Mapping[str, Any],
        metadata: Mapping[str, Any],
        data_version: str,
        embedding_version: str | None,
        metrics: Mapping[str, Any],
        extra_json: Mapping[str, Any] | None = None,
        model_id: str | None = None,
        item_item: np.ndarray | None = None,
    ) -> ModelRecord:
        """Write a model directory and add it as a ``candidate``; returns its record.

        ``metadata`` is completed with model_id, model_type, created_at, versions, n_users,
        n_items and factors. ``extra_json`` adds files (e.g. ``evaluation.json``), checksummed too;
        ``item_item`` (EASE's B) is written as ``B.npy``.
        """
        if model_type not in V.MODEL_TYPES:
            raise RegistryError(f"unknown model type {model_type!r}; expected {V.MODEL_TYPES}")
        model_id = model_id or new_model_id(model_type)
        if not MODEL_ID_PATTERN.fullmatch(model_id):
            raise RegistryError(
                f"model id {model_id!r} is not a valid directory name: use letters, digits, "
                "'.', '_' and '-' (at most 128 characters, not starting with '.' or '-')."
            )
        created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        meta = {
            **dict(metadata),
            "model_id": model_id,
            "model_type": model_type,
            "created_at": created_at,
            "data_version": data_version,
            "embedding_version": embedding_version,
            "n_users": int(user_factors.shape[0]),
            "n_items": int(item_factors.shape[0]),
            "factors": int(item_factors.shape[1]),
        }
        if model_id in self._read()["models"] or (self.root / model_id).exists():
            raise RegistryError(f"model id {model_id!r} already exists in {self.root}.")
        checksums = write_model_dir(
            self.root / model_id, user_factors, item_factors, params, meta, extra_json, item_item
        )
        entry = {
            "model_id": model_id,
            "model_type": model_type,
            "path": model_id,
            "created_at": created_at,
            "data_version": data_version,
            "embedding_version": embedding_version,
            "hyperparameters": dict(params),
            "metrics": dict(metrics),
            "checksums": checksums,
            "status": V.STATUS_CANDIDATE,
        }
        with self._locked() as state:
            state["models"][model_id] = entry
        return ModelRecord.from_json(entry, self.root)

    def promote(self, model_id: str, force: bool = False, tolerance: float = 0.01) -> ModelRecord:
        """Make ``model_id`` current; QualityGateError when its gate metric is worse than the
        current model's by more than ``tolerance`` (unless ``force``)."""
        with self._locked() as state:
            record = self._record(state, model_id)
            load_model_dir(record)  # refuse to promote corrupt files
            previous = state.get("current")
            if previous == model_id:
                return record
            if previous is not None and previous in state["models"] and not force:
                self._check_gate(record, self._record(state, previous), tolerance)
            if previous in state["models"]:
                state["models"][previous]["status"] = V.STATUS_ARCHIVED
                state["history"].append(previous)
            state["models"][model_id]["status"] = V.STATUS_CURRENT
            state["current"] = model_id
            return self._record(state, model_id)

    @staticmethod
    def _check_gate(candidate: ModelRecord, current: ModelRecord, tolerance: float) -> None:
        new, old = candidate.gate_value, current.gate_value
        if candidate.metrics.get("protocol") != current.metrics.get("protocol"):
            # like with like: a model registered before the realistic headline has only the
            # exact-time value, which a realistic model also keeps under "exact"
            new, old = _exact_gate(candidate), _exact_gate(current)
        if old is None:
            return
        if new is None or new < old - tolerance:
            shown = "none" if new is None else f"{new:.4f}"
            raise QualityGateError(
                f"promote {candidate.model_id} refused: test NDCG@10 (trainable) {shown} is below "
                f"the current model {current.model_id}'s {old:.4f} minus tolerance {tolerance}. "
                "Use --force to promote anyway."
            )

    def rollback(self) -> ModelRecord:
        """Make the previous current model current again; RegistryError when there is none."""
        with self._locked() as state:
            history = [mid for mid in state["history"] if mid in state["models"]]
            if not history:
                raise RegistryError(
                    f"{self.file}: no previous model to roll back to (history is empty)."
                )
            target = history.pop()
            state["history"] = history
            current = state.get("current")
            if current in state["models"]:
                state["models"][current]["status"] = V.STATUS_ARCHIVED
            state["models"][target]["status"] = V.STATUS_CURRENT
            state["current"] = target
            return self._record(state, target)


def _exact_gate(record: ModelRecord) -> float | None:
    """The gate value under the exact-time protocol (older models have nothing else)."""
    if record.metrics.get("protocol", "exact") == "exact":
        return record.gate_value
    exact = record.metrics.get("exact")
    value = exact.get(V.GATE_METRIC) if isinstance(exact, dict) else None
    return None if value is None else float(value)
