"""``recsys embed`` in a real terminal (a pty) draws tqdm's bar with an ETA; a pipe gets none."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pandas as pd
import pytest

from scripts._server import REPO

pytestmark = pytest.mark.slow

# tqdm's bar: "tfidf: segmenting:  40%|████      | 48/120 [00:01<00:01, 30.2text/s]" (the first
# frame, drawn before any text is done, shows "[00:00<?, ?text/s]": no ETA to tell yet)
BAR = re.compile(
    r"tfidf: segmenting: +\d+%\|.*\| \d+/(\d+) \[\d\d:\d\d<(\d\d:\d\d|\?), +([\d.]+|\?)text/s\]"
)


def _embed_command(processed: Path) -> list[str]:
    return [sys.executable, "-m", "recommender", "embed", "--processed", str(processed)]


def _run_in_pty(command: list[str], timeout: float = 300.0) -> tuple[int, str]:
    """Run ``command`` with a pty as stdin/stdout/stderr; (exit code, everything it drew)."""
    leader, follower = pty.openpty()
    # a fresh pty is 0 x 0; tqdm fits its bar to the width, so give it a terminal's 24 x 120
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    process = subprocess.Popen(
        command, stdin=follower, stdout=follower, stderr=follower, cwd=REPO, close_fds=True
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            elif process.poll() is not None:
                break
    finally:
        os.close(leader)
        code = process.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", errors="replace")


def test_a_terminal_sees_the_segmenting_bar(processed_dir: Path, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    shutil.copytree(processed_dir, processed)
    code, screen = _run_in_pty(_embed_command(processed))
    assert code == 0, screen[-2000:]
    bar = BAR.search(screen)
    assert bar is not None, screen[-2000:]
    assert bar.group(1) == str(len(pd.read_parquet(processed / "enriched_products.parquet")))
    assert "wrote " in screen


def test_a_pipe_sees_no_bar(processed_dir: Path, tmp_path: Path) -> None:
    processed = tmp_path / "processed"
    shutil.copytree(processed_dir, processed)
    done = subprocess.run(
        _embed_command(processed), capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "segmenting" not in done.stdout + done.stderr
    assert re.search(r"^wrote .*, \d+\.\ds$", done.stdout, flags=re.MULTILINE)
