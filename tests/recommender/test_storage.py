"""Atomic writes: temporary names carry the writer's pid, failures name the target."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from recommender import storage


def test_temporary_name_carries_the_writer_pid(tmp_path: Path) -> None:
    seen: list[str] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp.name)
        tmp.write_text("x")

    storage.atomic_write(tmp_path / "registry.json", writer)
    assert seen[0].startswith(f".registry.json.{os.getpid()}.") and seen[0].endswith(".tmp")
    assert storage.temp_owner(seen[0], storage.TEMP_SUFFIX) == os.getpid()
    assert storage.temp_owner(".registry.json.k2j3h4g_.tmp", storage.TEMP_SUFFIX) is None
    assert storage.temp_owner(".als-1.42.abc_1234.staging", storage.STAGING_SUFFIX) == 42


def test_failed_write_names_the_target_and_keeps_it(tmp_path: Path) -> None:
    target = tmp_path / "registry.json"
    target.write_text("old")

    def full_disk(_tmp: Path) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(storage.ArtifactWriteError) as caught:
        storage.atomic_write(target, full_disk)
    assert (caught.value.errno, caught.value.filename) == (errno.ENOSPC, str(target))
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "registry.json"
    ]


def test_pid_alive() -> None:
    assert storage.pid_alive(os.getpid())
    assert not storage.pid_alive(0) and not storage.pid_alive(2**40)
