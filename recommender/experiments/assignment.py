"""Deterministic assignment of a visitor to an experiment's variant.

A keyed BLAKE2b hash of (experiment name, visitor key) maps every visitor to a point in [0, 1):
the same visitor gets the same variant in every worker, on every host and after every restart
(Python's ``hash()`` is salted per process and would not). The experiment name is part of the
key, so two experiments split users independently.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from recommender.config.experiments import ExperimentSpec, VariantSpec

_PERSON = b"recsys-ab-v1"  # BLAKE2b personalisation: these hashes are for assignment only
_SCALE = float(2**64)


def bucket(experiment: str, key: str) -> float:
    """The visitor's point in [0, 1) for ``experiment`` (uniform, stable forever)."""
    digest = hashlib.blake2b(
        f"{experiment}\x00{key}".encode(), digest_size=8, person=_PERSON
    ).digest()
    return int.from_bytes(digest, "big") / _SCALE


@dataclass(frozen=True)
class Assignment:
    """The experiment and variant a visitor sees."""

    experiment: str
    variant: VariantSpec


def assign(spec: ExperimentSpec, key: str) -> VariantSpec | None:
    """The variant of ``spec`` for ``key``, or ``None`` when the visitor is outside its traffic.

    The first ``traffic`` of the unit interval is in the experiment; inside it, the variants
    take consecutive slices proportional to their ``weight``.
    """
    point = bucket(spec.name, key)
    if point >= spec.traffic:
        return None
    scaled = point / spec.traffic * sum(v.weight for v in spec.variants)
    edge = 0.0
    for variant in spec.variants:
        edge += variant.weight
        if scaled < edge:
            return variant
    return spec.variants[-1]  # float rounding at the very top
