"""Scrape-time Prometheus collector over the live serving state (caches, model, warm-up).

These numbers live in objects that a reload replaces (a new model gets new, empty caches), so
they are read when Prometheus scrapes rather than mirrored into metric objects on every request.
Cache counters therefore restart from zero when a new model is loaded — a counter reset, which
``rate()`` handles.

Series: ``recsys_model_loaded``, ``recsys_model_info{model_id,model_type,data_version,
embedding_version}``, ``recsys_model_loaded_timestamp_seconds``, and per ``cache``
(``user_profile``, ``item_similarity``, ``results``): ``recsys_cache_hits_total``,
``recsys_cache_misses_total``, ``recsys_cache_evictions_total``, ``recsys_cache_size``,
``recsys_cache_max_size``, ``recsys_cache_bytes``, ``recsys_cache_max_bytes``;
the warm-up: ``recsys_cache_warmup_state{state}`` (1 for the current
state), ``recsys_cache_warmup_duration_seconds``, ``recsys_cache_warmup_items``,
``recsys_cache_warmup_users``; with an event store, this worker's live state:
``recsys_live_state_bytes``, ``recsys_live_state_items``, ``recsys_live_state_users``,
``recsys_live_state_users_evicted_total``; per running A/B experiment and variant, read from
the shared ledger (so every worker reports the same totals — aggregate with ``max``, not
``sum``): ``recsys_experiment_impressions``, ``recsys_experiment_outcomes{outcome}`` (impressions
with a click, cart, purchase), ``recsys_experiment_revenue``,
``recsys_experiment_p_value{metric}`` (vs control) and ``recsys_experiment_status{status}``;
per worker: ``recsys_experiment_fallbacks_total{experiment,variant,reason}`` (answers of a model
variant given by control: ``not_loaded``, ``load_failed``, ``limit``),
``recsys_variant_model_bytes{model_id,kind}`` (``heap`` / ``mapped`` bytes of each loaded model,
the default's too), ``recsys_variant_models_loaded`` and
``recsys_variant_model_load_failures_total``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
from prometheus_client.registry import Collector

from recommender.experiments import ExperimentRunner
from recommender.serving import ModelHolder
from recommender.serving.variant_models import VariantModels

WARMUP_STATES = ("pending", "running", "done", "partial", "disabled", "failed")
_CACHE_COUNTERS = (
    ("hits", "Cache lookups answered from the cache (since the model was loaded)."),
    ("misses", "Cache lookups that had to compute (since the model was loaded)."),
    ("evictions", "Entries dropped for size or TTL (since the model was loaded)."),
)


def _label(value: object) -> str:
    return "" if value is None else str(value)


class ServingCollector(Collector):
    """Reads :attr:`holder` (set when the app's lifespan creates it) at every scrape."""

    def __init__(self, holder: ModelHolder | None = None) -> None:
        self.holder = holder
        self.experiments: ExperimentRunner | None = None
        self.variant_models: VariantModels | None = None

    def describe(self) -> list:
        return []  # the series depend on the live state; never probed at registration

    def collect(self) -> Iterator:
        yield from self._experiments()
        yield from self._serving()

    def _experiments(self) -> Iterator:
        runner = self.experiments
        if runner is None or not runner.specs:
            return
        labels = ["experiment", "variant"]
        impressions = GaugeMetricFamily(
            "recsys_experiment_impressions", "Lists shown in the experiment.", labels=labels
        )
        outcomes = GaugeMetricFamily(
            "recsys_experiment_outcomes",
            "Impressions with at least one attributed click / cart / purchase.",
            labels=[*labels, "outcome"],
        )
        revenue = GaugeMetricFamily(
            "recsys_experiment_revenue", "Attributed purchase revenue.", labels=labels
        )
        p_values = GaugeMetricFamily(
            "recsys_experiment_p_value",
            "Two-sided p-value of the variant against control.",
            labels=[*labels, "metric"],
        )
        status = GaugeMetricFamily(
            "recsys_experiment_status",
            "1 for the experiment's status.",
            labels=["experiment", "status"],
        )
        try:
            report = runner.cached_report()
        except runner.ledger.errors:  # a ledger that is down must not fail the scrape
            report = []
        for exp in report:
            name = exp["experiment"]
            for value in ("running", "stopped", "promoted"):
                status.add_metric([name, value], 1.0 if exp["status"] == value else 0.0)
            for row in exp["variants"]:
                key = [name, row["variant"]]
                impressions.add_metric(key, row["impressions"])
                for outcome in ("clicks", "carts", "purchases"):
                    outcomes.add_metric([*key, outcome], row[outcome])
                revenue.add_metric(key, row["revenue"])
                for metric in ("ctr", "cart_rate", "purchase_rate", "revenue_per_impression"):
                    test = row[metric].get("vs_control")
                    if test is not None:
                        p_values.add_metric([*key, metric], test["p_value"])
        yield from (impressions, outcomes, revenue, p_values, status)
        yield from self._variant_models(runner)

    def _variant_models(self, runner: ExperimentRunner) -> Iterator:
        fallbacks = CounterMetricFamily(
            "recsys_experiment_fallbacks",
            "Answers of a model variant given by control instead (this worker), by reason.",
            labels=["experiment", "variant", "reason"],
        )
        for (experiment, variant, reason), n in sorted(runner.fallbacks.items()):
            fallbacks.add_metric([experiment, variant, reason], n)
        yield fallbacks
        models = self.variant_models
        if models is None or not runner.settings.variant_model_ids():
            return
        holder = self.holder
        stats = models.stats(holder.state if holder is not None else None)
        memory = GaugeMetricFamily(
            "recsys_variant_model_bytes",
            "Array bytes of each loaded model (heap: this process; mapped: page cache).",
            labels=["model_id", "kind"],
        )
        for entry in [stats["default"], *stats["loaded"]]:
            if entry is not None:
                memory.add_metric([entry["model_id"], "heap"], entry["heap_bytes"])
                memory.add_metric([entry["model_id"], "mapped"], entry["mapped_bytes"])
        yield memory
        yield GaugeMetricFamily(
            "recsys_variant_models_loaded",
            "Variant models held beside the default (cap: experiments.max_loaded_models).",
            value=len(stats["loaded"]),
        )
        yield CounterMetricFamily(
            "recsys_variant_model_load_failures",
            "Variant model loads that failed (their variants fall back to control).",
            value=stats["load_failures"],
        )

    def _serving(self) -> Iterator:
        holder = self.holder
        state = holder.state if holder is not None else None
        loaded = GaugeMetricFamily("recsys_model_loaded", "1 while a model is loaded, else 0.")
        loaded.add_metric([], 1.0 if state is not None else 0.0)
        yield loaded
        if state is None:
            return
        info = state.bundle.info
        model = InfoMetricFamily("recsys_model", "The serving model version.")
        model.add_metric(
            [],
            {
                "model_id": state.bundle.model_id,
                "model_type": _label(info.get("model_type")),
                "data_version": _label(info.get("data_version")),
                "embedding_version": _label(info.get("embedding_version")),
            },
        )
        yield model
        yield GaugeMetricFamily(
            "recsys_model_loaded_timestamp_seconds",
            "Unix time the serving model was loaded in this process.",
            value=state.loaded_at,
        )
        stats = state.caches.stats()
        caches = [(name, stats[name]) for name in ("user_profile", "item_similarity", "results")]
        for field, text in _CACHE_COUNTERS:
            family = CounterMetricFamily(f"recsys_cache_{field}", text, labels=["cache"])
            for name, cache in caches:
                family.add_metric([name], cache[field])
            yield family
        for field, name_, text in (
            ("size", "recsys_cache_size", "Entries in the cache now."),
            ("max_size", "recsys_cache_max_size", "Configured capacity (entries)."),
            ("bytes", "recsys_cache_bytes", "Estimated bytes held by the cache's entries now."),
            (
                "max_bytes",
                "recsys_cache_max_bytes",
                "Most bytes the cache can hold (max_size x largest entry).",
            ),
        ):
            gauge = GaugeMetricFamily(name_, text, labels=["cache"])
            for name, cache in caches:
                if cache[field] is not None:
                    gauge.add_metric([name], cache[field])
            yield gauge
        yield from self._warmup(stats["warmup"])
        if (live := state.engine.live) is not None:
            yield from self._live(live.stats())

    @staticmethod
    def _live(stats: dict) -> Iterator:
        """This worker's live state (``events.max_items_per_user`` / ``max_live_items``)."""
        yield GaugeMetricFamily(
            "recsys_live_state_bytes",
            "Bytes held by this worker's live event state (arrays + per-user lists, estimated).",
            value=stats["memory_bytes"],
        )
        yield GaugeMetricFamily(
            "recsys_live_state_items",
            "Seen + liked items held in this worker's live state (cap: events.max_live_items).",
            value=stats["items_held"],
        )
        yield GaugeMetricFamily(
            "recsys_live_state_users",
            "Users with live events in this worker.",
            value=stats["users"],
        )
        yield CounterMetricFamily(
            "recsys_live_state_users_evicted",
            "Users whose live history was dropped for the live-state cap (since the model loaded).",
            value=stats["users_evicted"],
        )

    @staticmethod
    def _warmup(warmup: dict) -> Iterator:
        current = GaugeMetricFamily(
            "recsys_cache_warmup_state", "1 for the warm-up's current state.", labels=["state"]
        )
        for state in WARMUP_STATES:
            current.add_metric([state], 1.0 if warmup["state"] == state else 0.0)
        yield current
        yield GaugeMetricFamily(
            "recsys_cache_warmup_duration_seconds",
            "Duration of the last cache warm-up.",
            value=warmup["seconds"],
        )
        yield GaugeMetricFamily(
            "recsys_cache_warmup_items",
            "Products whose neighbours the last warm-up cached.",
            value=warmup["items_warmed"],
        )
        yield GaugeMetricFamily(
            "recsys_cache_warmup_users",
            "Users whose profiles the last warm-up cached.",
            value=warmup["users_warmed"],
        )
