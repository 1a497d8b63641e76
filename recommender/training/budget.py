"""A build-level time budget shared by the tuning studies (``tuning.build_budget_seconds``).

Why: each study stops after ``tuning.timeout_seconds``, but at 1M users × 50K products the
studies alone (item-kNN, popularity, then ALS and BPR side by side) could take ~30 minutes, leaving
nothing for hybrid tuning, the test table and the refit. With a budget, a study's timeout is also
capped at a fixed share of the budget left when it starts; the rest stays for the steps that have
no trial count to cut. A shop whose studies end by their trial count long before their share
(the demo shop, Hasaki: seconds) tunes exactly as without it.
"""

from __future__ import annotations

import time

from recommender.config.training import TrainingSettings

# share of the budget left that a study may use when it starts (CF studies run side by side)
STUDY_SHARES = {"item_knn": 0.10, "popularity": 0.05, "cf": 0.35}


class BuildBudget:
    """A build's deadline; ``for_study`` caps a study's timeout at its share of what is left."""

    def __init__(self, seconds: float | None, started: float | None = None) -> None:
        self.seconds = seconds
        self.started = time.perf_counter() if started is None else started

    def left(self) -> float | None:
        """Seconds left (None: no budget); never below 0."""
        if self.seconds is None:
            return None
        return max(0.0, self.seconds - (time.perf_counter() - self.started))

    def for_study(self, settings: TrainingSettings, study: str) -> TrainingSettings:
        """``settings`` with ``tuning.timeout_seconds`` capped at ``STUDY_SHARES[study]`` of the
        budget left (at least one second: a study always scores its first trial)."""
        left = self.left()
        if left is None:
            return settings
        cap = max(1.0, STUDY_SHARES[study] * left)
        if cap >= settings.tuning.timeout_seconds:
            return settings
        tuning = settings.tuning.model_copy(update={"timeout_seconds": cap})
        return settings.model_copy(update={"tuning": tuning})
