"""Experiment settings: the ``experiments:`` list of ``config/serving_config.yaml``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
ModelId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")]  # the registry's


class VariantSpec(BaseModel):
    """One arm: serving overrides on top of the defaults (``None`` keeps the default).

    ``weights`` is a hybrid weight set (signal -> weight, as a request's ``rerank_weights``);
    ``rerank`` switches MMR on or off and ``diversity`` sets its trade-off; ``model_id`` names a
    registered model that answers this arm's users (loaded beside the default, see
    ``max_loaded_models``; the default model when it is the registry's current one).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    weight: float = Field(1.0, gt=0, description="share of the experiment's traffic, relative")
    control: bool = False
    weights: dict[str, float] | None = None
    rerank: bool | None = None
    diversity: float | None = Field(None, ge=0.0, le=1.0)
    model_id: ModelId | None = None


class ExperimentSpec(BaseModel):
    """An A/B(/n) test: ``traffic`` of all users, split over ``variants`` by their weights."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    traffic: float = Field(1.0, gt=0.0, le=1.0)
    variants: list[VariantSpec] = Field(min_length=2)

    @model_validator(mode="after")
    def _one_control(self) -> ExperimentSpec:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: variant names must be unique: {names}")
        controls = [v.name for v in self.variants if v.control]
        if len(controls) != 1:
            raise ValueError(
                f"experiment {self.name!r}: exactly one variant needs control: true "
                f"(found {len(controls)}); mark the current production setting as control"
            )
        return self

    @property
    def control(self) -> VariantSpec:
        return next(v for v in self.variants if v.control)

    def variant(self, name: str) -> VariantSpec | None:
        return next((v for v in self.variants if v.name == name), None)


class ExperimentsSettings(BaseModel):
    """Running experiments and where their impression ledger lives (shared by workers)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ledger_backend: Literal["sqlite", "redis"] = "sqlite"
    ledger_path: str = "data/experiments.sqlite3"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_key_prefix: str = Field("recsys:{ab}:", min_length=1)
    redis_socket_timeout_seconds: float = Field(1.0, gt=0)
    retention_days: float | None = Field(90.0, gt=0)
    compact_interval_seconds: float = Field(3600.0, gt=0)
    flush_seconds: float = Field(0.5, gt=0, le=60)
    summary_cache_seconds: float = Field(5.0, ge=0)
    max_loaded_models: int = Field(2, ge=0, le=16)
    running: list[ExperimentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ExperimentsSettings:
        names = [e.name for e in self.running]
        if len(set(names)) != len(names):
            raise ValueError(f"experiments.running: names must be unique: {names}")
        models = self.variant_model_ids()
        if len(models) > self.max_loaded_models:
            raise ValueError(
                f"experiments.running name {len(models)} variant models ({', '.join(models)}) but "
                f"experiments.max_loaded_models is {self.max_loaded_models}: raise it (each "
                "loaded model costs its arrays' memory, see /stats) or run fewer model variants"
            )
        return self

    def variant_model_ids(self) -> list[str]:
        """Distinct registered model ids the variants name, in config order."""
        ids = [v.model_id for e in self.running for v in e.variants if v.model_id is not None]
        return list(dict.fromkeys(ids))
