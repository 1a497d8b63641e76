"""Which variant a visitor sees, what it changes, and the per-variant report.

:class:`ExperimentRunner` is the one object the service talks to: :meth:`choose` assigns a
visitor (first running experiment whose traffic includes them), :meth:`options_for` turns the
variant into request options, :meth:`report` is the admin table. Stop/promote decisions live in
the shared ledger, so every worker follows them within ``STATE_TTL_SECONDS``.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from recommender.config.experiments import ExperimentSpec, ExperimentsSettings, VariantSpec
from recommender.errors import InvalidRequestError
from recommender.experiments.assignment import assign
from recommender.experiments.ledger import ExperimentState, LedgerBase
from recommender.experiments.stats import VariantCounts, variant_table, verdict
from recommender.serving.reranker import check_weights

log = logging.getLogger(__name__)
STATE_TTL_SECONDS = 1.0
RUNNING = ExperimentState("running")


@dataclass(frozen=True)
class Choice:
    """The experiment and variant for one answer; ``record`` is False once it is promoted and
    when the variant's model could not be served (``fallback``: why; control answered)."""

    experiment: str
    variant: VariantSpec
    record: bool = True
    fallback: str | None = None


class ExperimentRunner:
    """Assignment + overrides + reporting for the configured experiments."""

    def __init__(self, settings: ExperimentsSettings, ledger: LedgerBase) -> None:
        self.settings = settings
        self.ledger = ledger
        self.specs = {spec.name: spec for spec in settings.running}
        for spec in settings.running:  # a bad weight set fails the start, not every request
            for variant in spec.variants:
                try:
                    check_weights(variant.weights)
                except InvalidRequestError as exc:
                    raise InvalidRequestError(
                        f"experiments.running[{spec.name}].variants[{variant.name}].{exc}"
                    ) from None
        self._states: dict[str, ExperimentState] = {}
        self._states_at = float("-inf")
        self._report: tuple[float, list[dict[str, Any]]] | None = None
        self.fallbacks: Counter[tuple[str, str, str]] = Counter()  # (experiment, variant, reason)
        self.on_states_changed: Callable[[], None] | None = None  # e.g. unload stopped models

    def states(self) -> dict[str, ExperimentState]:
        """Shared stop/promote decisions, re-read at most every ``STATE_TTL_SECONDS``."""
        now = time.monotonic()
        if now - self._states_at > STATE_TTL_SECONDS:
            self._states_at = now
            try:
                states = self.ledger.states()
            except self.ledger.errors as exc:  # answers go on with the last known decisions
                log.warning("experiment ledger unreadable (%s); keeping the last states", exc)
            else:
                changed = states != self._states
                self._states = states
                if changed and self.on_states_changed is not None:
                    self.on_states_changed()
        return self._states

    def wanted_models(self) -> list[str]:
        """Model ids still served by some variant: every variant of a running experiment, the
        winner of a promoted one (a stopped experiment needs none)."""
        states = self.states()
        out: list[str] = []
        for spec in self.specs.values():
            state = states.get(spec.name, RUNNING)
            if state.status == "stopped":
                continue
            for variant in spec.variants:
                if variant.model_id is None:
                    continue
                if state.status == "promoted" and variant.name != state.winner:
                    continue
                out.append(variant.model_id)
        return list(dict.fromkeys(out))

    def fall_back(self, choice: Choice, reason: str) -> Choice:
        """Control instead of ``choice`` (its model is not loaded): counted, logged once per
        variant and reason, not recorded as an impression (it would bias both arms)."""
        key = (choice.experiment, choice.variant.name, reason)
        if key not in self.fallbacks:
            log.warning("experiment %s: variant %s answered by control: %s", key[0], key[1], reason)
        self.fallbacks[key] += 1
        control = self.specs[choice.experiment].control
        return replace(choice, variant=control, record=False, fallback=reason)

    def refresh(self) -> None:
        self._states_at = float("-inf")

    def choose(self, key: str) -> Choice | None:
        """The variant ``key`` (user id, or session id for anonymous visitors) sees, if any."""
        if not self.specs:
            return None
        states = self.states()
        for spec in self.specs.values():
            state = states.get(spec.name, RUNNING)
            if state.status == "stopped":
                continue
            if state.status == "promoted" and state.winner is not None:
                winner = spec.variant(state.winner)
                if winner is not None:
                    return Choice(spec.name, winner, record=False)
                continue
            variant = assign(spec, key)
            if variant is not None:
                return Choice(spec.name, variant)
        return None

    @staticmethod
    def overrides(variant: VariantSpec) -> dict[str, Any]:
        """The request options the variant sets (the request's own win where it sets them)."""
        out: dict[str, Any] = {}
        if variant.weights is not None:
            out["weights"] = variant.weights
        if variant.rerank is not None:
            out["rerank"] = variant.rerank
        if variant.diversity is not None:
            out["diversity"] = variant.diversity
        return out

    def stop(self, experiment: str) -> None:
        self._spec(experiment)
        self.ledger.set_state(experiment, "stopped")
        self.refresh()

    def promote(self, experiment: str, variant: str) -> None:
        spec = self._spec(experiment)
        if spec.variant(variant) is None:
            names = ", ".join(v.name for v in spec.variants)
            raise KeyError(f"experiment {experiment!r} has no variant {variant!r} (has {names})")
        self.ledger.set_state(experiment, "promoted", variant)
        self.refresh()

    def _spec(self, experiment: str) -> ExperimentSpec:
        spec = self.specs.get(experiment)
        if spec is None:
            names = ", ".join(self.specs) or "none configured"
            raise KeyError(f"no experiment {experiment!r} (running: {names})")
        return spec

    def cached_report(self) -> list[dict[str, Any]]:
        """:meth:`report` at most ``summary_cache_seconds`` old (for /metrics scrapes)."""
        now = time.monotonic()
        if self._report is None or now - self._report[0] > self.settings.summary_cache_seconds:
            self._report = (now, self.report())
        return self._report[1]

    def report(self) -> list[dict[str, Any]]:
        """Per experiment: status, the per-variant table (rates, intervals, tests), a verdict."""
        if not self.specs:
            return []
        counts = self.ledger.counts()
        positions = self.ledger.click_positions()
        states = self.ledger.states()
        out = []
        for spec in self.specs.values():
            got = counts.get(spec.name, {})
            ordered = {v.name: got.get(v.name, VariantCounts(0)) for v in spec.variants}
            rows = variant_table(ordered, spec.control.name)
            for row in rows:
                clicks = positions.get(spec.name, {}).get(row["variant"], {})
                row["clicks_by_position"] = {str(k): v for k, v in sorted(clicks.items())}
            state = states.get(spec.name, RUNNING)
            out.append(
                {
                    "experiment": spec.name,
                    "status": state.status,
                    "winner": state.winner,
                    "traffic": spec.traffic,
                    "control": spec.control.name,
                    "variants": rows,
                    "verdict": {
                        m: verdict(rows, m)
                        for m in ("ctr", "cart_rate", "purchase_rate", "revenue_per_impression")
                    },
                }
            )
        return out
