"""scripts/content_baseline.py: the reference rows, the served row it reproduces, the verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recommender import vocabulary as V
from recommender.data.processed import load_processed
from recommender.evaluation.evaluator import evaluate_rankers
from recommender.evaluation.protocol import EvaluationSet, build_evaluation_set
from recommender.evaluation.side_signals import load_aligned_embeddings
from recommender.scoring.signals import content_scores

ROOT = Path(__file__).resolve().parents[2]
ROWS = ("plain", "plain+fields", "plain+fields+sublinear", "served sparse", "served")
ROWS += ("served+recency",)


@pytest.fixture(scope="module")
def run(embedded_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, dict]:
    out = tmp_path_factory.mktemp("content_baseline") / "report.json"
    env = {**os.environ, "RECSYS_EVALUATION__BOOTSTRAP_SAMPLES": "20", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "scripts/content_baseline.py", "--processed", str(embedded_dir)]
        + ["--json", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, done.stdout, json.loads(out.read_text())


def test_every_row_in_both_universes_for_both_segments(run: tuple[int, str, dict]) -> None:
    _, stdout, report = run
    names = {f"{row} | {universe}" for row in ROWS for universe in ("catalogue", "interacted")}
    assert set(report["rows"]) == names
    for row in report["rows"].values():
        assert set(row) == {V.SEGMENT_TRAINABLE, V.SEGMENT_COLD}
        for cell in row.values():
            assert 0.0 <= cell["low"] <= cell["mean"] <= cell["high"] <= 1.0
    assert all(name in stdout for name in names)


def test_the_served_row_is_the_served_content_signal(
    run: tuple[int, str, dict], embedded_dir: Path
) -> None:
    """``served | catalogue`` is the tables' content row: the served content_scores over the
    stored embeddings, ranked over the whole catalogue with the protocol's exclusion."""
    _, _, report = run
    data = load_processed(embedded_dir)
    aligned = load_aligned_embeddings(data)
    assert aligned is not None

    def served(batch: EvaluationSet, segment: str) -> np.ndarray:
        return content_scores(batch.histories, aligned.vectors)

    test = build_evaluation_set(data, V.STAGE_TEST)
    segments = [V.SEGMENT_TRAINABLE, V.SEGMENT_COLD]
    table = evaluate_rankers({"c": served}, test, segments, [10], None, 0, 42)
    for segment in segments:
        expected = table[segment]["c"]["metrics"]["ndcg@10"]["mean"]  # type: ignore[index]
        got = report["rows"]["served | catalogue"][segment]["mean"]
        assert got == pytest.approx(expected, abs=1e-9)


def test_verdicts_say_pass_or_miss_and_set_the_exit_status(run: tuple[int, str, dict]) -> None:
    code, stdout, report = run
    verdicts = [line for line in stdout.splitlines() if line.startswith(("PASS", "MISS"))]
    assert len(verdicts) == 6 and len(report["targets"]) == 6
    assert code == (0 if all(report["targets"].values()) else 1)
    catalogue = report["rows"]["served | catalogue"][V.SEGMENT_TRAINABLE]["mean"]
    name = f"trainable: served content {catalogue:.4f} >= 0.094 (catalogue)"
    assert report["targets"][name] == (catalogue >= 0.094)
