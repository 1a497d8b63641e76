"""The prequential replay (``evaluate --replay``) on a small shop built so that the items of one
pair are taken together: the table's shape, live events beating the frozen model on users with
history, no event used before it is predicted, and the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from recommender import vocabulary as V
from recommender.cli import main
from recommender.config.serving import PathsSettings, ServingSettings
from recommender.errors import InvalidRequestError
from recommender.events import SqliteEventStore
from recommender.registry import Registry
from recommender.replay import REPORT_SEGMENTS, VARIANTS, interactions_to_events, replay_events
from recommender.replay.cutoff import PROCESSED, REGISTRY, split_at_fraction
from recommender.serving import load_bundle
from tests.fixtures.models import fast_settings

ROUTINES = 10  # items 3k, 3k+1, 3k+2 are one routine: whoever takes one takes all, within hours
STEPS = 3
DAY = 86400.0
START = 1_700_000_000.0


def _paired_shop(directory: Path, seed: int = 3) -> Path:
    """Canonical products + interactions: 400 users, each taking 2-3 routines, one in a day."""
    rng = np.random.default_rng(seed)
    products = pd.DataFrame(
        {
            V.PRODUCT_ID: [f"p{i:02d}" for i in range(STEPS * ROUTINES)],
            V.NAME: [f"routine {i // STEPS} step {i % STEPS}" for i in range(STEPS * ROUTINES)],
            V.BRAND: [f"brand{i % 5}" for i in range(STEPS * ROUTINES)],
            V.CATEGORY: [f"cat{i % 3}" for i in range(STEPS * ROUTINES)],
        }
    )
    rows: list[tuple[str, str, float, pd.Timestamp]] = []
    weights = np.linspace(2.0, 1.0, ROUTINES)
    for user in range(400):
        size = int(rng.integers(2, 4))
        routines = rng.choice(ROUTINES, size=size, replace=False, p=weights / weights.sum())
        for routine in routines:
            day = START + float(rng.uniform(0, 90)) * DAY
            for step, offset in enumerate(rng.permutation(STEPS)):
                item = STEPS * int(routine) + int(offset)
                stamp = pd.Timestamp(day + step * 3600.0, unit="s")
                rows.append((f"u{user:03d}", f"p{item:02d}", 5.0, stamp))
    interactions = pd.DataFrame(rows, columns=[V.USER_ID, V.PRODUCT_ID, V.RATING, V.TIMESTAMP])
    directory.mkdir(parents=True, exist_ok=True)
    products.to_csv(directory / "products.csv", index=False)
    interactions.to_parquet(directory / "interactions.parquet", index=False)
    return directory


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("replay")
    raw = _paired_shop(base / "raw")
    config = base / "config"
    config.mkdir()
    (config / "training.yaml").write_text(yaml.safe_dump(fast_settings().model_dump()))
    out = base / "replay.json"
    argv = [
        "evaluate", "--replay", "--source", "canonical", "--input", str(raw),
        "--replay-fraction", "0.25", "--workdir", str(base / "work"), "--output", str(out),
        "--config-dir", str(config), "--model-types", "als",
    ]  # fmt: skip
    assert main(argv) == 0
    return {"raw": raw, "work": base / "work", "report": json.loads(out.read_text("utf-8"))}


def test_the_report_has_every_segment_and_variant_with_intervals(replayed, capsys) -> None:
    report = replayed["report"]
    assert report["stage"] == "replay" and report["k"] == 10 and report["fraction"] == 0.25
    segments = report["segments"]
    assert list(segments) == [s for s in REPORT_SEGMENTS if s in segments]
    assert {"trainable", "with_history", "all"} <= set(segments)
    every = segments["all"]
    assert every["events"] == report["stream"]["scored"] > 0
    assert every["events"] == sum(segments[s]["events"] for s in V.SEGMENTS if s in segments)
    for body in segments.values():
        assert body["new_item_events"] == 0  # every product of this shop sold before the cut-off
        assert set(body["rows"]) == set(VARIANTS)
        for row in body["rows"].values():
            assert set(row) == {"ndcg@10", "hr@10"}
            for value in row.values():
                assert value["low"] <= value["mean"] <= value["high"]
                assert 0.0 <= value["low"] and value["high"] <= 1.0
        for metric in ("ndcg@10", "hr@10"):
            assert set(body["live_vs_frozen"][metric]) == {"difference", "ratio"}


def test_the_command_prints_one_line_per_segment_and_variant(tmp_path, replayed, capsys) -> None:
    segments = replayed["report"]["segments"]
    out = tmp_path / "again.json"
    config = tmp_path / "config"
    config.mkdir()
    (config / "training.yaml").write_text(yaml.safe_dump(fast_settings().model_dump()))
    argv = [
        "evaluate", "--replay", "--source", "canonical", "--input", str(replayed["raw"]),
        "--replay-fraction", "0.25", "--output", str(out), "--config-dir", str(config),
        "--model-types", "als",
    ]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    table = [line for line in printed.splitlines() if line.split()[:1] in [[s] for s in segments]]
    assert len(table) == 3 * len(segments) + len(segments)  # variants, then the paired line
    assert json.loads(out.read_text("utf-8"))["segments"] == segments  # same data, same numbers


def test_live_events_beat_the_frozen_model_where_the_next_item_follows_the_last(
    replayed,
) -> None:
    segments = replayed["report"]["segments"]
    for segment in ("with_history", "all"):
        rows = segments[segment]["rows"]
        assert rows["live"]["ndcg@10"]["mean"] > rows["frozen"]["ndcg@10"]["mean"]
        assert rows["live"]["ndcg@10"]["mean"] > rows["live_popularity"]["ndcg@10"]["mean"]
        assert segments[segment]["live_vs_frozen"]["ndcg@10"]["difference"]["low"] > 0


def _stream(work: Path, raw: Path, limit: int | None, name: str) -> list[Any]:
    settings = ServingSettings(
        paths=PathsSettings(processed_dir=str(work / PROCESSED), registry_dir=str(work / REGISTRY))
    )
    bundle = load_bundle(settings)
    after = split_at_fraction("canonical", raw, 0.25).after
    events = list(interactions_to_events(after))[:limit]
    with SqliteEventStore(work / name, synchronous="NORMAL") as store:
        observations, counts = replay_events(bundle, settings, events, store)
        assert store.latest_seq() == counts.events == len(events)
    return observations


def test_no_event_is_used_before_it_is_predicted(replayed) -> None:
    work, raw = replayed["work"], replayed["raw"]
    full = _stream(work, raw, None, "full.sqlite3")
    # the live state had applied exactly the events before each predicted one (seq = position)
    assert [o.applied_seq for o in full] == [o.index for o in full]
    # and the future does not change the past: a stream cut in the middle predicts its events
    # exactly as the whole stream did
    cut = full[len(full) // 2].index
    prefix = _stream(work, raw, cut + 1, "prefix.sqlite3")
    assert prefix == [o for o in full if o.index <= cut]
    assert prefix[-1].index == cut


def test_the_cut_off_is_the_timestamp_quantile_and_splits_strictly(replayed) -> None:
    split = split_at_fraction("canonical", replayed["raw"], 0.25)
    before = split.before[V.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
    after = split.after[V.TIMESTAMP].to_numpy("datetime64[ns]").astype(np.int64) / 1e9
    assert before.max() < split.cutoff <= after.min()
    assert np.all(np.diff(after) >= 0)  # streamed in time order
    assert len(after) / (len(before) + len(after)) == pytest.approx(0.25, abs=0.01)
    with pytest.raises(InvalidRequestError, match="between 0 and 1"):
        split_at_fraction("canonical", replayed["raw"], 1.0)


def test_replay_without_a_source_is_a_one_line_error(capsys) -> None:
    assert main(["evaluate", "--replay"]) == 2
    assert "--source and --input" in capsys.readouterr().err


def test_the_report_says_what_the_builds_live_validation_chose(replayed) -> None:
    report = replayed["report"]
    loaded = Registry(replayed["work"] / REGISTRY).load(None)
    assert report["model_id"] == loaded.record.model_id
    assert report["live_fold_in"] == loaded.metadata["live_fold_in"]
    assert report["trainable_fold_in"] is None  # the config leaves it to the model
    assert report["hybrid"] == loaded.metadata["hybrid"]
