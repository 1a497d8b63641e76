"""Imports flow one way: service -> serving -> scoring -> data, training -> evaluation -> scoring;
replay (evaluate --replay) sits above serving and training.

Each check runs in a fresh interpreter so modules other tests imported cannot hide a dependency:
it imports every module of a package and lists which forbidden packages ended up loaded.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for info in pkgutil.walk_packages(getattr(package, "__path__", []), package.__name__ + "."):
    importlib.import_module(info.name)
forbidden = sys.argv[2:]
print(" ".join(sorted(f for f in forbidden if f in sys.modules)))
"""

LOWER_THAN = [
    ("recommender.evaluation", ["recommender.training", "recommender.serving", "service"]),
    ("recommender.scoring", ["recommender.training", "recommender.evaluation", "service"]),
    ("recommender.data", ["recommender.training", "recommender.evaluation", "service"]),
    ("recommender.serving", ["recommender.training", "recommender.evaluation", "service"]),
    ("recommender.model_directory", ["recommender.registry"]),
    (
        "recommender.events",
        ["recommender.serving", "recommender.training", "recommender.evaluation", "service"],
    ),
    ("recommender.registry", ["recommender.training", "recommender.evaluation", "service"]),
    ("recommender.replay", ["service"]),  # above serving and training, below the commands
]


@pytest.mark.parametrize(("package", "forbidden"), LOWER_THAN, ids=[p for p, _ in LOWER_THAN])
def test_package_does_not_import_the_layers_above_it(package: str, forbidden: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, package, *forbidden],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip() == ""


def test_training_and_evaluation_packages_have_no_lazy_getattr() -> None:
    import recommender.evaluation as evaluation
    import recommender.training as training

    assert not hasattr(training, "__getattr__") and not hasattr(evaluation, "__getattr__")
    assert training.tune_hybrid.__module__ == "recommender.training.hybrid_tuning"
    assert evaluation.stage_signals.__module__ == "recommender.evaluation.side_signals"
