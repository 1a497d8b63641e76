"""benchmark_memory's readings of /proc (no server started here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import _scale  # noqa: E402
from benchmark_memory import children, smaps_rollup  # noqa: E402


def test_smaps_rollup_reads_rss_and_pss_of_a_process():
    mine = smaps_rollup(os.getpid())
    assert set(mine) >= {"rss", "pss", "private_dirty"}
    assert 0 < mine["pss"] <= mine["rss"]
    assert smaps_rollup(2**22 + 12345) == {}  # no such process: nothing, not an error


def test_children_lists_the_workers_of_a_master():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert child.pid in children(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_scale_shop_directory_and_build_command():
    directory = _scale.shop_dir(1_000_000, 50_000, "dense", Path("/x"))
    assert directory == Path("/x/1000000x50000-dense")
    assert _scale.shop_dir(10, 5, "default", Path("/x")) == Path("/x/10x5")
    command = _scale.build_command(directory, 1_000_000, 50_000)
    assert command[1:4] == ["-m", "recommender", "build"]
    assert command[command.index("--registry") + 1] == str(directory / "cf")
