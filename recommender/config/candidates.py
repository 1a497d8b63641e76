"""Settings of the ANN candidate stage, shared by serving (``candidates``) and evaluation
(``evaluation.candidates``): the served ranking and its evaluation take the same path."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# the candidate sources a size can be given for (``per_signal``)
Source = Literal["cf", "content", "item_similarity", "popularity"]
_CONTENT: Source = "content"
_CF: Source = "cf"


class CandidateSettings(BaseModel):
    """The ANN candidate stage (recommender.scoring.candidates): ``exact`` scores every user over
    the whole catalogue; ``ann`` over the union of ANN, item-kNN and popularity candidates;
    ``auto`` = ``ann`` from ``auto_min_items`` products on (DEPLOYMENT_OPTIMIZATION.md §11.2)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["exact", "ann", "auto"] = "auto"
    auto_min_items: int = Field(20_000, ge=1)
    per_source: int = Field(300, ge=10, le=5000)  # top-C of each candidate source (§11.2)
    # a source's own top-C instead of per_source: content 100 kept recall@10 0.995 / 0.989 at
    # 50K (§11.2) and its neighbour table 20 MB; CF 150 kept 0.995 / 0.994 on the 1M × 50K shop
    # (0.998 / 0.9975 at 300) and took a third off a 1,000-user batch, its HNSW searches
    per_signal: dict[Source, int] = Field(default_factory=lambda: {_CONTENT: 100, _CF: 150})
    connectivity: int = Field(16, ge=4, le=128)  # HNSW graph degree
    expansion_add: int = Field(128, ge=8, le=4096)  # build beam width
    expansion_search: int = Field(128, ge=8, le=4096)  # search beam width (recall vs time)
    dtype: Literal["f32", "f16", "i8"] = "f16"  # stored scalars (f16: half the file)
    # each item's content top-k stored once (content_neighbours.npy, k = the content source's
    # size): a user's content candidates are their history items' rows, no search per request
    content_neighbours: bool = True
    cf_min_factors: int = Field(32, ge=1)  # CF indexed from this many factors; else exact
    build_threads: int = Field(1, ge=1, le=64)  # 1: the same index file for the same data

    @field_validator("per_signal")
    @classmethod
    def _sizes(cls, value: dict[str, int]) -> dict[str, int]:
        for source, size in value.items():
            if not 10 <= size <= 5000:
                raise ValueError(f"per_signal.{source} must be in 10..5000, got {size}")
        return value

    def enabled(self, n_items: int) -> bool:
        """Whether a catalogue of ``n_items`` products is scored through the candidate stage."""
        return self.mode == "ann" or (self.mode == "auto" and n_items >= self.auto_min_items)
