"""grid_bar: a tqdm bar with the grid's size and an ETA on a terminal, nothing off a terminal."""

from __future__ import annotations

import io
import re
import time

import pytest

from recommender.training.progress import grid_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_with_an_eta(monkeypatch: pytest.MonkeyPatch) -> None:
    screen = _Terminal()
    monkeypatch.setattr("sys.stderr", screen)
    seen = []
    for point in grid_bar(["a", "b", "c"], "als grid"):
        seen.append(point)
        time.sleep(0.15)  # past tqdm's 0.1 s refresh interval: every step is drawn
    assert seen == ["a", "b", "c"]
    # "als grid:  33%|███▎      | 1/3 [00:00<00:00,  6.62fit/s]": done/total [elapsed<remaining]
    assert re.search(r"als grid: +33%\|.*\| 1/3 \[00:00<00:0\d, +[\d.]+fit/s\]", screen.getvalue())


def test_off_a_terminal_nothing_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    assert list(grid_bar([1, 2], "bpr grid")) == [1, 2]
    assert pipe.getvalue() == ""
