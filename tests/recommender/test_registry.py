"""The model registry: promote/rollback, quality gate, checksums, atomicity, concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recommender import storage
from recommender import vocabulary as V
from recommender.errors import ModelLoadError, QualityGateError, RegistryError, UnknownModelError
from recommender.registry import Registry

N_USERS, N_ITEMS, D = 7, 5, 3


def _register(root: Path, ndcg: float | None = 0.2, data_version: str = "data-v1", seed: int = 0):
    rng = np.random.default_rng(seed)
    return Registry(root).register(
        model_type=V.MODEL_ALS,
        user_factors=rng.random((N_USERS, D), dtype=np.float32),
        item_factors=rng.random((N_ITEMS, D), dtype=np.float32),
        params={"factors": D, "regularization": 1.0},
        metadata={"hybrid": {"weights": {}, "normalisation": "minmax"}},
        data_version=data_version,
        embedding_version="emb-v1",
        metrics={V.GATE_METRIC: ndcg},
    )


def test_register_writes_files_and_record(tmp_path: Path) -> None:
    record = _register(tmp_path)
    assert record.status == V.STATUS_CANDIDATE
    assert sorted(record.checksums) == sorted(V.MODEL_FILES)
    state = json.loads((tmp_path / V.REGISTRY_FILE).read_text())
    assert state["current"] is None and state["history"] == []
    assert state["models"][record.model_id]["path"] == record.model_id
    meta = json.loads((Path(record.path) / V.METADATA_FILE).read_text())
    assert (meta["n_users"], meta["n_items"], meta["factors"]) == (N_USERS, N_ITEMS, D)
    assert meta["data_version"] == "data-v1" and meta["model_id"] == record.model_id
    loaded = Registry(tmp_path).load(record.model_id)
    assert loaded.user_factors.shape == (N_USERS, D) and loaded.item_factors.dtype == np.float32


def test_promote_rollback_and_history(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    assert registry.current() is None and registry.current_marker() is None
    first, second = _register(tmp_path, 0.20, seed=1), _register(tmp_path, 0.21, seed=2)
    registry.promote(first.model_id)
    marker = registry.current_marker()
    assert registry.promote(second.model_id).status == V.STATUS_CURRENT
    assert registry.current().model_id == second.model_id
    assert registry.get(first.model_id).status == V.STATUS_ARCHIVED
    assert registry.current_marker() != marker
    assert registry.rollback().model_id == first.model_id
    assert registry.current().model_id == first.model_id
    assert registry.get(second.model_id).status == V.STATUS_ARCHIVED
    with pytest.raises(RegistryError, match="no previous model"):
        registry.rollback()


def test_quality_gate_refuses_worse_model_unless_forced(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    good, bad = _register(tmp_path, 0.20, seed=1), _register(tmp_path, 0.18, seed=2)
    within = _register(tmp_path, 0.195, seed=3)
    registry.promote(good.model_id)
    with pytest.raises(QualityGateError, match="below the current model"):
        registry.promote(bad.model_id, tolerance=0.01)
    assert registry.current().model_id == good.model_id
    assert registry.promote(within.model_id, tolerance=0.01).model_id == within.model_id
    assert registry.promote(bad.model_id, force=True, tolerance=0.01).model_id == bad.model_id


def test_quality_gate_compares_like_with_like_across_protocols(tmp_path: Path) -> None:
    """A model with the realistic headline against one registered before it: both compared on
    the exact-time value (a realistic 0.191 would fail against an exact 0.205)."""
    registry = Registry(tmp_path)
    old = _register(tmp_path, 0.205, seed=1)  # exact-time only, as before the realistic protocol
    rng = np.random.default_rng(4)

    def realistic(gate: float, exact: float, seed: int):
        return Registry(tmp_path).register(
            model_type=V.MODEL_ALS,
            user_factors=rng.random((N_USERS, D), dtype=np.float32),
            item_factors=rng.random((N_ITEMS, D), dtype=np.float32),
            params={"factors": D, "regularization": 1.0, "seed": seed},
            metadata={"hybrid": {"weights": {}, "normalisation": "minmax"}},
            data_version="data-v1",
            embedding_version="emb-v1",
            metrics={
                "protocol": "realistic",
                V.GATE_METRIC: gate,
                "exact": {V.GATE_METRIC: exact},
            },
        )

    registry.promote(old.model_id)
    fine, worse = realistic(0.191, 0.200, 5), realistic(0.191, 0.180, 6)
    assert registry.promote(fine.model_id, tolerance=0.01).model_id == fine.model_id
    registry.promote(old.model_id, force=True)
    with pytest.raises(QualityGateError, match="0.1800 is below"):
        registry.promote(worse.model_id, tolerance=0.01)
    same = realistic(0.185, 0.150, 7)  # realistic against realistic: the headline values
    registry.promote(fine.model_id, force=True)
    assert registry.promote(same.model_id, tolerance=0.01).model_id == same.model_id


def test_unknown_model_and_no_current(tmp_path: Path) -> None:
    registry = Registry(tmp_path)
    with pytest.raises(UnknownModelError, match="nope"):
        registry.get("nope")
    with pytest.raises(ModelLoadError, match="no current model"):
        registry.load()
    with pytest.raises(ModelLoadError, match="not in"):
        registry.load("nope")


def test_checksum_mismatch_and_missing_file_are_refused(tmp_path: Path) -> None:
    record = _register(tmp_path)
    registry = Registry(tmp_path)
    v_file = Path(record.path) / V.ITEM_FACTORS_FILE
    original = v_file.read_bytes()
    v_file.write_bytes(original[:-4] + b"\x00\x00\x80\x3f")
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        registry.load(record.model_id)
    with pytest.raises(ModelLoadError, match="checksum mismatch"):
        registry.promote(record.model_id)
    v_file.write_bytes(original)
    (Path(record.path) / V.PARAMS_FILE).unlink()
    with pytest.raises(ModelLoadError, match="missing"):
        registry.load(record.model_id)


def test_data_version_mismatch_names_both_versions(tmp_path: Path) -> None:
    record = _register(tmp_path, data_version="aaaa")
    with pytest.raises(ModelLoadError, match="aaaa.*bbbb"):
        Registry(tmp_path).load(record.model_id, expected_data_version="bbbb")
    assert Registry(tmp_path).load(record.model_id, expected_data_version="aaaa")


def test_invalid_registry_json_is_a_clear_error(tmp_path: Path) -> None:
    _register(tmp_path)
    (tmp_path / V.REGISTRY_FILE).write_text("{not json")
    registry = Registry(tmp_path)
    with pytest.raises(RegistryError, match="not valid JSON"):
        registry.list()
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        registry.load()
    assert registry.current_marker() is not None  # never raises


def test_current_pointing_to_missing_model(tmp_path: Path) -> None:
    record = _register(tmp_path)
    state = json.loads((tmp_path / V.REGISTRY_FILE).read_text())
    state["current"] = "ghost"
    (tmp_path / V.REGISTRY_FILE).write_text(json.dumps(state))
    with pytest.raises(RegistryError, match="ghost"):
        Registry(tmp_path).current()
    assert Registry(tmp_path).promote(record.model_id).model_id == record.model_id


def test_failed_write_leaves_registry_intact(tmp_path: Path, monkeypatch) -> None:
    record = _register(tmp_path)
    before = (tmp_path / V.REGISTRY_FILE).read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("recommender.registry.atomic_write_json", boom)
    with pytest.raises(OSError, match="disk full"):
        Registry(tmp_path).promote(record.model_id)
    assert (tmp_path / V.REGISTRY_FILE).read_bytes() == before
    monkeypatch.setattr("recommender.model_directory.atomic_save_npy", boom)
    with pytest.raises(OSError, match="disk full"):
        _register(tmp_path, seed=4)
    assert (tmp_path / V.REGISTRY_FILE).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == sorted(
        [record.model_id, V.REGISTRY_FILE]
    )


def _register_many(root: str, seed: int, count: int) -> None:
    for k in range(count):
        _register(Path(root), seed=seed * 100 + k)


def test_concurrent_writers_both_land(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_register_many, args=(str(tmp_path), s, 5)) for s in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    records = Registry(tmp_path).list()
    assert len(records) == 10
    assert all(Registry(tmp_path).load(r.model_id) for r in records)


# --- litter of killed writers ----------------------------------------------------------------
KILL_BEFORE_RENAME = """
import os, signal, sys
import recommender.storage
from recommender.registry import Registry
recommender.storage.os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)
Registry(sys.argv[1]).promote(sys.argv[2])
"""


def _age(path: Path, seconds: float) -> Path:
    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))
    return path


def test_stale_temp_files_of_killed_writers_are_removed_under_the_lock(tmp_path: Path) -> None:
    first, second = _register(tmp_path, seed=1), _register(tmp_path, seed=2)
    with subprocess.Popen(
        [sys.executable, "-c", KILL_BEFORE_RENAME, str(tmp_path), first.model_id],
        cwd=Path(__file__).resolve().parents[2],
        stderr=subprocess.PIPE,
    ) as proc:
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL, err
    litter = list(tmp_path.glob(f".{V.REGISTRY_FILE}.*.tmp"))
    assert [storage.temp_owner(p.name, storage.TEMP_SUFFIX) for p in litter] == [proc.pid]
    assert not storage.pid_alive(proc.pid)
    proc_pid = proc.pid
    me = os.getpid()
    keep = [
        tmp_path / f".{V.REGISTRY_FILE}.{me}.livewrtr.tmp",  # a running writer's fresh file
        _age(_mkdir(tmp_path / f".als-x.{proc_pid}.abcdefgh.staging"), 60),  # within the grace
        _age(_mkdir(tmp_path / f".als-y.{me}.abcdefgh.staging"), 1200),  # live trainer
    ]
    keep[0].write_text("{}")
    remove = [
        *litter,
        _age(_touch(tmp_path / f".{V.REGISTRY_FILE}.{me}.oldfile_.tmp"), 7200),  # pid reused
        _touch(tmp_path / f".{V.REGISTRY_FILE}.k2j3h4g_.tmp"),  # before names carried a pid
        _age(_mkdir(tmp_path / f".als-z.{proc_pid}.abcdefgh.staging"), 1200),
    ]
    Registry(tmp_path).promote(second.model_id)
    assert all(p.exists() for p in keep)
    assert not any(p.exists() for p in remove)
    assert Registry(tmp_path).current().model_id == second.model_id


def _touch(path: Path) -> Path:
    path.write_text("{")
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    (path / "U.npy").write_bytes(b"x")
    return path


# --- entry paths stay inside the registry ------------------------------------------------------
@pytest.mark.parametrize("stored", ["../../etc", "/etc", ".", "m/../../outside"])
def test_entry_path_leaving_the_registry_is_refused(tmp_path: Path, stored: str) -> None:
    root = tmp_path / "cf"
    record = _register(root)
    state = json.loads((root / V.REGISTRY_FILE).read_text())
    state["models"][record.model_id]["path"] = stored
    (root / V.REGISTRY_FILE).write_text(json.dumps(state))
    registry = Registry(root)
    expected = f"entry '{record.model_id}' has path '{re.escape(stored)}', which leaves"
    with pytest.raises(ModelLoadError, match=expected):
        registry.load(record.model_id)
    with pytest.raises(RegistryError, match=expected):
        registry.promote(record.model_id)
    assert registry.current() is None


def test_symlinked_model_directory_outside_the_registry_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "cf"
    record = _register(root)
    outside = tmp_path / "elsewhere"
    Path(record.path).rename(outside)
    (root / record.model_id).symlink_to(outside)
    with pytest.raises(ModelLoadError, match="which leaves the registry directory"):
        Registry(root).load(record.model_id)


def test_nested_path_inside_the_registry_is_allowed(tmp_path: Path) -> None:
    record = _register(tmp_path)
    (tmp_path / "archive").mkdir()
    Path(record.path).rename(tmp_path / "archive" / record.model_id)
    state = json.loads((tmp_path / V.REGISTRY_FILE).read_text())
    state["models"][record.model_id]["path"] = f"archive/{record.model_id}"
    (tmp_path / V.REGISTRY_FILE).write_text(json.dumps(state))
    assert Registry(tmp_path).load(record.model_id).record.path == str(
        (tmp_path / "archive" / record.model_id).resolve()
    )


@pytest.mark.parametrize("model_id", ["../evil", "a/b", ".hidden", " ", "x" * 129])
def test_model_id_that_is_not_a_directory_name_is_refused(tmp_path: Path, model_id: str) -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(RegistryError, match="not a valid directory name"):
        Registry(tmp_path / "cf").register(
            model_type=V.MODEL_ALS,
            user_factors=rng.random((2, 2)),
            item_factors=rng.random((2, 2)),
            params={},
            metadata={},
            data_version="d",
            embedding_version=None,
            metrics={},
            model_id=model_id,
        )
    assert not (tmp_path / "evil").exists() and not (tmp_path / "cf" / "a").exists()
