"""Model types tuned on two forked processes give exactly the sequential run's models and report."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.training.parallel import parallel_map
from recommender.training.pipeline import run_training
from tests.fixtures.models import fast_settings
from tests.recommender.training.synthetic import synthetic_data


def test_two_workers_train_the_same_models_as_one() -> None:
    data = synthetic_data(users=300, items=40, seed=3)
    lines: dict[int, list[str]] = {1: [], 2: []}
    runs = {
        workers: run_training(
            data,
            fast_settings().model_copy(update={"model_workers": workers}),
            V.MODEL_TYPES,
            progress=lines[workers].append,
            embeddings=False,
        )
        for workers in (1, 2)
    }
    one, two = runs[1], runs[2]
    assert list(two.models) == list(one.models) == list(V.MODEL_TYPES)
    assert two.best == one.best
    for model_type in V.MODEL_TYPES:
        a, b = one.models[model_type], two.models[model_type]
        assert b.hybrid == a.hybrid
        assert _without_seconds(b.validation) == _without_seconds(a.validation)
        np.testing.assert_array_equal(b.served.item_factors, a.served.item_factors)
        np.testing.assert_array_equal(b.served.user_factors, a.served.user_factors)
    assert two.report["segments"] == one.report["segments"]
    # every progress line of the workers reached the parent (in some interleaving)
    assert sorted(_untimed(lines[2])) == sorted(_untimed(lines[1]))


def _without_seconds(validation: dict) -> dict:
    """The validation record without the grid points' fit seconds (the only timing in it)."""
    grid = [{k: v for k, v in point.items() if k != "seconds"} for point in validation["grid"]]
    return {**validation, "grid": grid}


def _untimed(lines: list[str]) -> list[str]:
    """Progress lines without their seconds (runs differ in timing only)."""
    return [re.sub(r"\d+\.\ds", "s", line) for line in lines]


def _square(x: int, say) -> int:
    say(f"squaring {x}")
    return x * x


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_parallel_map_keeps_the_order_and_relays_lines(workers: int) -> None:
    said: list[str] = []
    assert parallel_map(_square, [1, 2, 3, 4], workers, said.append) == [1, 4, 9, 16]
    assert sorted(said) == [f"squaring {x}" for x in (1, 2, 3, 4)]


_OPENMP_THEN_FORK = """
import numpy as np, scipy.sparse as sp
from recommender import vocabulary as V
from recommender.config.training import ALSParams
from recommender.training.parallel import parallel_map
from recommender.training.tuning import fit_model

def fit(seed, say):
    matrix = sp.random(300, 80, density=0.05, format="csr", dtype=np.float32, random_state=seed)
    return fit_model(V.MODEL_ALS, matrix, ALSParams(factors=4, iterations=2)).item_factors.shape

assert fit(0, print) == (80, 4)  # the parent's OpenMP team (all cores)
print(parallel_map(fit, [1, 2], 2, print))
"""


def test_a_worker_fits_als_after_the_parent_ran_openmp() -> None:
    """The parent runs implicit's ALS on all cores' OpenMP threads, then forks: a worker's fit
    with the default thread count deadlocked in GNU OpenMP. Workers fit on one thread (run in a
    subprocess so that a deadlock fails the test instead of hanging the suite)."""
    import subprocess
    import sys

    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _OPENMP_THEN_FORK],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(80, 4), (80, 4)]"
