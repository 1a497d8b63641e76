"""Assignment is deterministic across processes and respects the configured shares."""

from __future__ import annotations

import collections
import os
import subprocess
import sys

from recommender.config.experiments import ExperimentSpec, VariantSpec
from recommender.experiments import assign, bucket, new_recommendation_id

SPEC = ExperimentSpec(
    name="hybrid-vs-pop",
    traffic=0.5,
    variants=[VariantSpec(name="control", control=True), VariantSpec(name="hybrid", weight=3)],
)
SCRIPT = """
import sys
from recommender.config.experiments import ExperimentSpec
from recommender.experiments import assign
spec = ExperimentSpec.model_validate_json(sys.argv[1])
for i in range(200):
    v = assign(spec, f"user-{i}")
    print(v.name if v else "-")
"""


def test_bucket_is_pinned_forever() -> None:
    """A changed hash would silently move every user to another variant mid-experiment."""
    assert bucket("exp", "user-1") == 0.11135382531359743


def test_same_user_same_variant_in_another_process() -> None:
    """Python's hash() is salted per process; the assignment must not be."""
    here = [(v.name if v else "-") for v in (assign(SPEC, f"user-{i}") for i in range(200))]
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, SPEC.model_dump_json()],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    )
    assert out.stdout.split() == here
    assert set(here) == {"-", "control", "hybrid"}


def test_shares_are_respected_on_10k_ids() -> None:
    counts = collections.Counter(
        (v.name if v else "-") for v in (assign(SPEC, f"u{i}") for i in range(10_000))
    )
    # expected 5000 outside, 1250 control, 3750 hybrid; 4 sigma of a binomial at n=10k <= 200
    assert abs(counts["-"] - 5000) < 200
    assert abs(counts["control"] - 1250) < 140
    assert abs(counts["hybrid"] - 3750) < 180


def test_experiments_split_independently() -> None:
    other = SPEC.model_copy(update={"name": "another"})
    same = sum(
        (assign(SPEC, f"u{i}") is None) == (assign(other, f"u{i}") is None) for i in range(4000)
    )
    assert 1800 < same < 2200  # independent halves agree about half the time


def test_recommendation_ids_are_unique_hex() -> None:
    ids = {new_recommendation_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)


def test_recommendation_ids_differ_in_a_forked_worker() -> None:
    """gunicorn forks its workers from one master: each must draw its own prefix, or two workers
    would hand out the same ids."""
    read, write = os.pipe()
    before = new_recommendation_id()
    pid = os.fork()
    if pid == 0:  # the child: send one id and leave at once
        os.write(write, new_recommendation_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    after = new_recommendation_id()
    assert len(child) == 32 and int(child, 16) >= 0
    assert child[:16] != before[:16] == after[:16]
    assert int(after[16:], 16) == int(before[16:], 16) + 1
