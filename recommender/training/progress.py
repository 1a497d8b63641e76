"""Progress bars over the tuning grids: a bar with an ETA on a terminal, silent elsewhere.

``make serve`` builds the demo model for several minutes on a laptop; a bar per grid (ALS/BPR
points, item-kNN and popularity points, hybrid searches) says how far it is and how long is left.
Off a terminal (CI logs, tests, pipes) tqdm disables itself (``disable=None``), and the one-line
per-point summaries the pipeline prints already tell the story.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
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
