"""Training settings: the typed model of ``config/training.yaml`` (every key documented there).

Hyperparameter models are saved next to the model they produced (``params.json``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from recommender.config.candidates import CandidateSettings


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Strict):
    positive_threshold: float = Field(4.0, ge=1, le=5)
    popular_top_k: int = Field(200, ge=1)
    confidence_alpha: float = Field(1.0, ge=0)


class EmbeddingSettings(_Strict):
    encoder: str = "tfidf"
    model: str | None = None
    batch_size: int = Field(32, ge=1)
    dim: int = Field(512, ge=2)


class ALSParams(_Strict):
    factors: int = Field(32, ge=1)
    regularization: float = Field(0.1, ge=0)
    iterations: int = Field(15, ge=1)
    alpha: float = Field(1.0, gt=0)
    random_state: int = 42


class BPRParams(_Strict):
    factors: int = Field(32, ge=1)
    learning_rate: float = Field(0.05, gt=0)
    regularization: float = Field(0.01, ge=0)
    iterations: int = Field(100, ge=1)
    random_state: int = 42
    # "uniform": negatives drawn uniformly from the catalogue (own sampler, training/bpr.py);
    # "popularity": implicit's sampler, which draws the item of a random interaction.
    negative_sampling: Literal["uniform", "popularity"] = "uniform"


class EASEParams(_Strict):
    # λ of EASE's closed form B = I − P / diag(P), P = (XᵀX + λI)⁻¹ (training/ease.py)
    regularization: float = Field(100.0, gt=0)


class ItemKNNParams(_Strict):
    neighbours: int = Field(50, ge=1)
    shrinkage: float = Field(10.0, ge=0)
    # extra co-occurrence weight of pairs a user took in the same session (0 = plain cosine) and
    # the gap that ends a session (scoring/item_knn.py session_items)
    session_weight: float = Field(0.0, ge=0)
    session_gap_hours: float = Field(168.0, gt=0)


class PopularityParams(_Strict):
    # popularity as of the request counts earlier interactions with weight 2 ** (-age / half-life);
    # None = every earlier interaction counts 1 (scoring/popularity.py PopularityHistory)
    half_life_days: float | None = Field(None, gt=0)


class SearchRange(_Strict):
    """A numeric range of the Optuna search (int or float by the parameter's type)."""

    low: float
    high: float
    log: bool = False  # sample log-uniformly (factors, regularisation, learning rates)
    step: float | None = None  # int ranges: multiples of step from low (iterations: pruning steps)

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if self.high < self.low or (self.log and self.low <= 0):
            raise ValueError(
                f"search range low={self.low} high={self.high} log={self.log}: need low <= high "
                "and low > 0 when log is true"
            )
        return self


# a parameter's search space: a range, or a list of choices (categorical)
SearchSpace = dict[str, SearchRange | list[int | float | str | None]]


class ALSSettings(_Strict):
    params: ALSParams = ALSParams()
    grid: dict[str, list[int | float]] = Field(default_factory=dict)  # tuning.method: grid
    search: SearchSpace = Field(default_factory=dict)  # tuning.method: optuna
    # points tried right after ``params`` (known-good elsewhere): a small budget starts from them
    starts: list[dict[str, int | float | str]] = Field(default_factory=list)


class BPRSettings(_Strict):
    params: BPRParams = BPRParams()
    grid: dict[str, list[int | float | str]] = Field(default_factory=dict)  # str: negative_sampling
    search: SearchSpace = Field(default_factory=dict)
    starts: list[dict[str, int | float | str]] = Field(default_factory=list)


class EASESettings(_Strict):
    params: EASEParams = EASEParams()
    grid: dict[str, list[float]] = Field(default_factory=dict)
    search: SearchSpace = Field(default_factory=dict)
    starts: list[dict[str, int | float | str]] = Field(default_factory=list)
    # EASE inverts an n × n matrix and serves a dense n × n float32 B (4 n² bytes: 16 MB at 2K
    # items, 1.6 GB at 20K): above this many catalogue items it is skipped (0: never fitted)
    max_items: int = Field(20000, ge=0)


class EvaluationSettings(_Strict):
    ks: list[int] = Field(default_factory=lambda: [5, 10, 20])
    bootstrap_samples: int = Field(1000, ge=0)
    seed: int = 42
    # slices of every table: test positives <= this many hours after the user's previous positive
    # are "same_session", the others "later" (recommender/evaluation/protocol.py)
    same_session_hours: float = Field(24.0, gt=0)
    # the realistic (headline) protocol: a service rebuilt every this many days (periods from
    # 1970-01-01 UTC, evaluation/protocol.py). live_popularity true: fed by events between builds
    # (POST /events), popularity as of each held-out interaction, the positives since the period
    # start counted with live_event_weight (keep it equal to serving_config.yaml's
    # events.popularity_weights of the event type the shop's interactions arrive as: reviews are
    # ``rating`` events, 2), the stale gate as served (off once live popularity counts an event);
    # false (the default, issue 13's headline): popularity frozen at the period start, what a
    # service rebuilt daily serves without popularity events; either way every positive before
    # that moment counts, other users' held-out ones included
    rebuild_period_days: float = Field(1.0, gt=0)
    live_popularity: bool = False
    live_event_weight: float = Field(2.0, ge=0)
    # users a stage (validation, test) is scored on: a seeded sample above this, every user at or
    # below it (0 = always every user); bounds grid search and test evaluation at 1M users
    max_users: int = Field(20_000, ge=0)
    # validation users x catalogue items a tuning trial ranks (0 = no bound): large catalogues
    # tune on fewer users (5,000 at 50K products), small shops keep max_users
    max_tuning_pairs: int = Field(250_000_000, ge=0)
    # the served ranking's candidate stage: the test table's hybrid rows score through it when
    # it is on for the catalogue (keep it equal to serving_config.yaml's ``candidates``)
    candidates: CandidateSettings = CandidateSettings()

    def tuning_users(self, n_items: int) -> int:
        """Validation users the tuning trials score (0 = every user): ``max_users``, or fewer
        when that many users × ``n_items`` would exceed ``max_tuning_pairs``."""
        if not self.max_tuning_pairs:
            return self.max_users
        bound = max(1, self.max_tuning_pairs // max(n_items, 1))
        return bound if self.max_users == 0 else min(self.max_users, bound)


class HybridTuningSettings(_Strict):
    normalisations: list[Literal["minmax", "rank"]] = Field(default=["minmax", "rank"])
    max_users: int = Field(2000, ge=1)
    # sampled users x catalogue items the weight search ranks per candidate (0 = no bound): a
    # 50K-product catalogue tunes on 400 users, shops up to 10K products keep max_users
    max_tuning_pairs: int = Field(20_000_000, ge=0)
    # live validation's users x items per segment (0 = no bound): every live user below 100M
    # (50,000 users at 2K products), 2,000 a segment at 50K (all of them held 18 GB there)
    max_live_pairs: int = Field(100_000_000, ge=0)
    folds: int = Field(2, ge=1)
    steps: list[float] = Field(default_factory=lambda: [0.05, 0.1, 0.2, 0.35, 0.5])
    rounds: int = Field(4, ge=0)
    min_z: float = Field(2.0, ge=0)
    starts: int = Field(2, ge=1)
    fold_in_regularization: list[float] = Field(default_factory=lambda: [0.1, 1.0, 10.0])
    # history-item recency decays tried (decay ** age, newest = 1); 1.0 (no decay) is always tried
    recency_decays: list[Annotated[float, Field(gt=0, le=1)]] = Field(default_factory=lambda: [1.0])
    # validation users the cold segment is tuned on: last_item = every user, history cut to its
    # newest item (the test cold task); exact = only users with one history item
    # (see training/hybrid_tuning.py)
    cold_population: Literal["last_item", "exact"] = "last_item"
    # live validation (training/live_validation.py): the newest share of train + val rows is
    # streamed as if live to choose live_fold_in and each segment's popularity share (0 = off)
    live_fraction: float = Field(0.2, ge=0, lt=1)
    live_popularity_shares: list[Annotated[float, Field(ge=0, le=1)]] = Field(
        default_factory=lambda: [0.1, 0.2, 0.35, 0.5, 0.75, 1.0]
    )
    # ALS: a trainable user's CF vector refolded from live evidence / context items is the ALS
    # user step with the newest item's confidence weight times one of these (live validation
    # chooses; the first wins ties; empty = refold like a cold user)
    refold_newest_boosts: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [1.0, 2.0, 4.0]
    )
    # the stale gate (training/stale_gate.py): users whose newest positive is more than this many
    # hours old get popularity of one of these half-lives (days; null = all-time), kept when it
    # validates; 0 or an empty list = off
    stale_after_hours: float = Field(0.0, ge=0)
    stale_half_lives: list[Annotated[float, Field(gt=0)] | None] = Field(default_factory=list)

    def live_users(self, n_items: int) -> int:
        """Live-validation users scored per segment (0 = all): ``max_live_pairs // n_items``."""
        return 0 if not self.max_live_pairs else max(1, self.max_live_pairs // max(n_items, 1))

    def tuning_users(self, n_items: int) -> int:
        """Users the weight search and the stale gate sample: ``max_users``, or fewer when that
        many users × ``n_items`` would exceed ``max_tuning_pairs``. Why: each candidate weighting
        ranks every sampled user against the whole catalogue, so at 50K products 2,000 users made
        the hybrid search the longest phase of a build (~20 min per normalisation)."""
        if not self.max_tuning_pairs:
            return self.max_users
        return max(1, min(self.max_users, self.max_tuning_pairs // max(n_items, 1)))


class TuningSettings(_Strict):
    """How hyperparameters are searched on validation (training/search.py, training/tuning.py)."""

    # optuna: a seeded TPE search of each ``search`` space; grid: every point of each ``grid``
    # (config/training.yaml says optuna; settings built in code keep their explicit grids)
    method: Literal["optuna", "grid"] = "grid"
    trials: int = Field(40, ge=1)  # per CF model study (ALS, BPR, EASE)
    side_trials: int = Field(16, ge=1)  # per side study (item-kNN, popularity half-life)
    demo_trials: int | None = Field(None, ge=1)  # `build --source demo`: this budget instead
    timeout_seconds: float = Field(900.0, gt=0)  # per study: no new trial starts after this
    # whole train/build (None = off): each study's timeout is also capped at a share of what is
    # left of it (training/budget.py), so a 1M x 50K build fits; small shops never reach it
    build_budget_seconds: float | None = Field(None, gt=0)
    n_jobs: int = Field(2, ge=1)  # trials fitted at once (each single-threaded)
    startup_trials: int = Field(6, ge=0)  # random trials before TPE models the results
    pruning: bool = True  # MedianPruner on intermediate validation NDCG@10
    report_every: dict[str, int] = Field(default_factory=lambda: {"als": 5, "bpr": 50})
    # a searched point replaces the best start point (``params`` or ``starts``) only when its
    # paired per-user validation gain is >= min_z standard errors (0: the top validation value
    # wins); why: the top of 40 noisy validation values overfits small shops (training/search.py)
    min_z: float = Field(0.0, ge=0)
    # the protocol every validation choice is scored in: exact = popularity as of each held-out
    # minute; realistic = as of the start of its rebuild period (evaluation.rebuild_period_days),
    # what a service rebuilt on that schedule serves and what the headline tables report
    protocol: Literal["exact", "realistic"] = "exact"
    # the validation users every choice is scored on: all of them, or resampled to the test
    # stage's shares of (prior positives x time since the newest one) strata, read from the test
    # users' histories and request times only (training/matched_validation.py)
    validation_population: Literal["all", "matched"] = "all"


class GateSettings(_Strict):
    tolerance: float = Field(0.01, ge=0)


ModelName = Literal["als", "bpr", "ease"]
DEFAULT_PROMOTION_ORDER: tuple[ModelName, ...] = ("ease", "als", "bpr")


class PromotionSettings(_Strict):
    """Which trained model ``build`` promotes (training/promotion.py).

    The first of ``order`` that was trained is the default; another candidate replaces it only
    when its paired per-user validation NDCG@10 gain (trainable hybrid, cross-fitted folds) is
    >= ``min_z`` standard errors: the best validation value alone is noise on a small shop.
    """

    order: list[ModelName] = Field(
        default_factory=lambda: list(DEFAULT_PROMOTION_ORDER), min_length=1
    )
    min_z: float = Field(2.0, ge=0)

    @model_validator(mode="after")
    def _distinct(self) -> PromotionSettings:
        if len(set(self.order)) != len(self.order):
            raise ValueError(f"promotion.order lists a model twice: {self.order}")
        return self


EventTypeName = Literal["view", "cart", "purchase", "rating", "remove_from_cart"]


EVENT_RATINGS: dict[EventTypeName, float | None] = {"purchase": 5.0, "cart": 4.0, "view": 3.0}
EVENT_WEIGHTS: dict[EventTypeName, float] = {
    "purchase": 1.0,
    "cart": 0.5,
    "view": 0.25,
    "rating": 1.0,
}


class EventsInputSettings(_Strict):
    """How ``prepare``/``build`` turn stored events into interactions (data/event_input.py).

    ``ratings``: the rating an event type stands for (``rating`` events carry their own; a type
    mapped to null is not an interaction). ``weights``: the confidence basis of each type
    (multiplied by the rating lift like any source's weight).
    """

    ratings: dict[EventTypeName, Annotated[float, Field(ge=1, le=5)] | None] = Field(
        default_factory=lambda: dict(EVENT_RATINGS)
    )
    weights: dict[EventTypeName, Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: dict(EVENT_WEIGHTS)
    )


class TrainingSettings(_Strict):
    """Everything the offline pipeline can be tuned by."""

    seed: int = 42
    data: DataSettings = DataSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    als: ALSSettings = ALSSettings()
    bpr: BPRSettings = BPRSettings()
    ease: EASESettings = EASESettings()
    item_knn: ItemKNNParams = ItemKNNParams()
    item_knn_grid: dict[str, list[int | float]] = Field(default_factory=dict)
    popularity: PopularityParams = PopularityParams()
    popularity_grid: dict[str, list[float | None]] = Field(default_factory=dict)
    item_knn_search: SearchSpace = Field(default_factory=dict)
    item_knn_starts: list[dict[str, int | float]] = Field(default_factory=list)
    popularity_search: SearchSpace = Field(default_factory=dict)
    popularity_starts: list[dict[str, float]] = Field(default_factory=list)
    tuning: TuningSettings = TuningSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    gate: GateSettings = GateSettings()
    promotion: PromotionSettings = PromotionSettings()
    hybrid: HybridTuningSettings = HybridTuningSettings()
    # "all": register factors refit on train + val + test (evaluated as the train + val fit);
    # "train+val": register the evaluated fit itself (training/pipeline.py)
    deployed_fit: Literal["all", "train+val"] = "all"
    # processes that tune the model types side by side (training/parallel.py); 1 = one after another
    model_workers: int = Field(2, ge=1, le=16)
    event_input: EventsInputSettings = EventsInputSettings()
