"""Progress of long work: a bar with an ETA on a terminal, one line per phase with its time.

``make serve`` builds the demo model for minutes on a laptop; a bar per grid (ALS/BPR points,
item-kNN and popularity points, hybrid searches) and per embedding pass says how far it is and how
long is left. Off a terminal (CI logs, tests, pipes) tqdm disables itself (``disable=None``), and
the phase lines (:func:`phase`, ``name done in 12.3s``) tell the story with elapsed seconds.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def grid_bar(points: Iterable[T], desc: str, total: int | None = None, unit: str = "fit") -> tqdm:
    """``tqdm`` over ``points`` (an iterator yielding them) labelled ``desc``, removed when done."""
    return tqdm(
        points, desc=desc, total=total, unit=unit, disable=None, leave=False, dynamic_ncols=True
    )


def write(line: str) -> None:
    """Print ``line`` above any open bar (a plain ``print`` would tear it)."""
    tqdm.write(line)
    sys.stdout.flush()


def done_line(name: str, seconds: float) -> str:
    """The one line a finished phase prints: ``"<name> done in 12.3s"``."""
    return f"{name} done in {seconds:.1f}s"


@contextmanager
def phase(name: str, say: Callable[[str], None] = write) -> Iterator[None]:
    """Time the block and ``say`` :func:`done_line` when it ends (not when it raises)."""
    started = time.perf_counter()
    yield
    say(done_line(name, time.perf_counter() - started))
