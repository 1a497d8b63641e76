"""Experiment settings: the ``experiments:`` list of ``config/serving_config.yaml``."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class VariantSpec(BaseModel):
    """One arm: serving overrides on top of the defaults (``None`` keeps the default).

    ``weights`` is a hybrid weight set (signal -> weight, as a request's ``rerank_weights``);
    ``rerank`` switches MMR on or off and ``diversity`` sets its trade-off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    weight: float = Field(1.0, gt=0, description="share of the experiment's traffic, relative")
    control: bool = False
    weights: dict[str, float] | None = None
    rerank: bool | None = None
    diversity: float | None = Field(None, ge=0.0, le=1.0)


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

    ledger_path: str = "data/experiments.sqlite3"
    flush_seconds: float = Field(0.5, gt=0, le=60)
    summary_cache_seconds: float = Field(5.0, ge=0)
    running: list[ExperimentSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> ExperimentsSettings:
        names = [e.name for e in self.running]
        if len(set(names)) != len(names):
            raise ValueError(f"experiments.running: names must be unique: {names}")
        return self
