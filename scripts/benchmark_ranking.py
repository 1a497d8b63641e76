"""Evaluation ranking at scale: ``top_k_items`` against the former whole-matrix argpartition.

Usage::

    python scripts/benchmark_ranking.py [--items 50000] [--users 1024] [--k 20] [--seed 0]

Ranks one batch of ``--users`` rows over ``--items`` products the way every validation trial and
the test table rank them (a few seen items excluded per row, the fixed tie permutation), in one
run: dense float64 scores (CF-like), the same as float32 (the hybrid search's totals), and
mostly-zero rows (item-kNN of short histories, where ties cross the cut). Prints the time per row
of the former method (``np.argpartition`` over the permuted float64 copy, which top_k_items still
uses for rows with a tie across the cut) and of ``top_k_items``, their ratio, and checks that the
two give the same ids in the same order. Target: identical, and ≥ 3× faster at 50K products.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recommender.evaluation import protocol  # noqa: E402

TARGET_SPEEDUP = 3.0


def former(scores: np.ndarray, k: int, exclude: list[np.ndarray], ties: np.ndarray) -> np.ndarray:
    """The ranking as it was: argpartition over the whole permuted float64 copy."""
    work = protocol._working_copy(scores, exclude)
    return protocol._top_k_permuted(work, min(k, scores.shape[1]), ties)


def _seconds(rank: Callable[[], np.ndarray]) -> tuple[float, np.ndarray]:
    began = time.perf_counter()
    result = rank()
    return time.perf_counter() - began, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1024)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    n, b = args.items, args.users
    ties = rng.permutation(n)
    exclude = [rng.choice(n, size=int(rng.integers(1, 8)), replace=False) for _ in range(b)]
    dense = rng.standard_normal((b, n))
    sparse = np.where(rng.random((b, n)) < 100 / n, rng.random((b, n)), 0.0)
    cases = {
        "dense float64": dense,
        "dense float32": dense.astype(np.float32),
        "mostly zero (kNN-like)": sparse,
    }
    print(f"load average before {os.getloadavg()[0]:.2f}; {b} rows x {n} items, top {args.k}")
    ok = True
    for name, scores in cases.items():
        before, expected = _seconds(lambda s=scores: former(s, args.k, exclude, ties))
        after, got = _seconds(lambda s=scores: protocol.top_k_items(s, args.k, exclude, ties))
        same = bool(np.array_equal(expected, got))
        speedup = before / after
        ok &= same and speedup >= TARGET_SPEEDUP
        print(
            f"{name:>24}: former {before / b * 1000:.3f} ms/row, top_k_items "
            f"{after / b * 1000:.3f} ms/row, {speedup:.1f}x, identical {same}"
        )
    print(f"load average after {os.getloadavg()[0]:.2f}")
    verdict = "PASS" if ok else "MISS"
    print(f"{verdict}: identical rankings and >= {TARGET_SPEEDUP:g}x faster in every case")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
