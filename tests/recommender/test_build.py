"""``build`` end to end through the CLI on a small generated shop, then evaluate/registry/train."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import re
from pathlib import Path

import pytest
import yaml

from recommender import vocabulary as V
from recommender.cli import main
from recommender.config.serving import ServingSettings
from recommender.data.sources.demo import NEW_VISITOR
from recommender.errors import EmptyDataError
from recommender.registry import Registry
from recommender.serving import Engine, ServingCaches, load_bundle
from recommender.training.pipeline import run_training
from tests.fixtures.models import fast_settings
from tests.recommender.training.synthetic import synthetic_data


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("build")
    config = base / "config"
    config.mkdir()
    # one process: the bars are captured from this process's stderr (forked workers draw theirs
    # on the inherited terminal; tests/recommender/training/test_parallel.py pins their results)
    settings = fast_settings().model_copy(update={"model_workers": 1})
    (config / "training.yaml").write_text(yaml.safe_dump(settings.model_dump()))
    paths = {
        "raw": base / "raw",
        "processed": base / "processed",
        "registry": base / "cf",
        "config": config,
    }
    argv = [
        "build", "--source", "demo", "--input", str(paths["raw"]),
        "--processed", str(paths["processed"]), "--registry", str(paths["registry"]),
        "--users", "2500", "--products", "80", "--seed", "11", "--config-dir", str(config),
    ]  # fmt: skip
    bars = _Terminal()  # a terminal on stderr: the grids draw their progress bars there
    with contextlib.redirect_stdout(io.StringIO()) as out, contextlib.redirect_stderr(bars):
        assert main(argv) == 0
    (base / "stdout.txt").write_text(out.getvalue())
    (base / "stderr.txt").write_text(bars.getvalue())
    paths["stdout"], paths["stderr"] = base / "stdout.txt", base / "stderr.txt"
    return paths


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_build_reports_each_phase_with_elapsed_time_and_bars_with_an_eta(built) -> None:
    out = built["stdout"].read_text()
    steps = re.findall(r"^\[(\d)/6 (\d+:\d\d)\] ", out, flags=re.MULTILINE)
    assert [number for number, _ in steps] == ["0", "1", "2", "3", "4", "5", "6"]
    clocks = [int(m) * 60 + int(s) for m, s in (c.split(":") for _, c in steps)]
    assert clocks == sorted(clocks)
    done = re.search(r"^done in \d+:\d\d \((.*)\): current model ", out, flags=re.MULTILINE)
    assert done is not None, out[-500:]
    names = [part.rsplit(" ", 1)[0] for part in done.group(1).split(", ")]
    assert names == ["demo data", "prepare", "embed", "train", "report", "register", "promote"]
    assert re.search(r"item-kNN and popularity tuned in \d+\.\ds", out)
    # off a terminal (stdout here): every phase ends with one line and its elapsed seconds, in order
    ended = re.findall(r"^ {6}(\S.*) done in \d+\.\ds$", out, flags=re.MULTILINE)
    assert ended == names
    for model_type in V.MODEL_TYPES:  # each model's training (grid, hybrid, live, refit) too
        pattern = rf"^ +{model_type} \(search, hybrid, live validation, refit\) done in \d+\.\ds$"
        assert re.search(pattern, out, flags=re.MULTILINE), model_type
    bars = built["stderr"].read_text()
    # each grid opens a bar with its size (the ETA itself: tests/recommender/training/test_progress)
    for grid in ("tfidf: segmenting", "als grid", "bpr grid", r"hybrid weights \(\w+\)"):
        assert re.search(grid + r": +0%\|.*\| 0/\d+ \[", bars), (grid, bars[-2000:])


def test_build_registers_and_promotes_an_evaluated_model(built, capsys) -> None:
    registry = Registry(built["registry"])
    current = registry.current()
    assert current is not None and current.status == V.STATUS_CURRENT
    assert {r.model_type for r in registry.list()} == set(V.MODEL_TYPES)
    loaded = registry.load(expected_data_version=current.data_version)
    meta = loaded.metadata
    for key in ("fold_in_regularization", "item_knn", "popularity", "hybrid", "metrics"):
        assert key in meta
    assert set(meta["hybrid"]["weights"]) == set(V.SEGMENTS)
    report = json.loads((Path(current.path) / V.EVALUATION_FILE).read_text())
    assert "leave-last-positive-out" in report["protocol"]
    rows = report["segments"][V.SEGMENT_TRAINABLE]["rows"]
    assert set(rows) == {
        "random", "popularity", "item_knn", "content", "als", "bpr", "ease", "hybrid"
    }  # fmt: skip
    assert set(report["segments"][V.SEGMENT_UNKNOWN]["rows"]) == {"random", "popularity", "hybrid"}
    ndcg = rows["hybrid"]["metrics"]["ndcg@10"]
    assert ndcg["low"] <= ndcg["mean"] <= ndcg["high"]
    assert current.gate_value == pytest.approx(ndcg["mean"], abs=1e-6)


def test_evaluate_shows_the_build_time_table_of_a_model_refit_on_all_data(
    built, tmp_path, capsys
) -> None:
    out = tmp_path / "report.json"
    argv = [
        "evaluate", "--processed", str(built["processed"]), "--registry", str(built["registry"]),
        "--output", str(out), "--config-dir", str(built["config"]),
    ]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(out.read_text())
    current = Registry(built["registry"]).current()
    hybrid = report["segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]["metrics"]["ndcg@10"]
    assert hybrid["mean"] == pytest.approx(current.gate_value, abs=1e-6)
    registered = json.loads((Path(current.path) / V.EVALUATION_FILE).read_text())
    assert Registry(built["registry"]).load().metadata["popularity"] == {"half_life_days": 30.0}
    for segment in V.SEGMENTS:  # popularity as of each request, with the model's half-life
        ours = report["segments"][segment]["rows"]["popularity"]["metrics"]["ndcg@10"]
        theirs = registered["segments"][segment]["rows"]["popularity"]["metrics"]["ndcg@10"]
        assert ours["mean"] == pytest.approx(theirs["mean"], abs=1e-9)
    printed = capsys.readouterr().out
    assert "NDCG@10" in printed and "deployed as a refit on all interactions" in printed
    assert (
        report == registered
    )  # the train+val fit's table: test is not scored by a model that saw it


def test_registry_cli_list_show_promote_rollback(built, capsys) -> None:
    registry = Registry(built["registry"])
    other = next(r for r in registry.list() if r.status != V.STATUS_CURRENT)
    root = ["--registry", str(built["registry"])]
    assert main(["registry", "list", *root]) == 0
    assert other.model_id in capsys.readouterr().out
    assert main(["registry", "show", other.model_id, *root]) == 0
    assert json.loads(capsys.readouterr().out)["model_id"] == other.model_id
    assert main(["registry", "show", "missing-id", *root]) == 2
    assert "missing-id" in capsys.readouterr().err
    before = registry.current().model_id
    assert main(["registry", "promote", other.model_id, "--force", *root]) == 0
    assert registry.current().model_id == other.model_id
    assert main(["registry", "rollback", *root]) == 0
    assert registry.current().model_id == before


def test_train_cli_without_processed_data_exits_2(tmp_path, capsys) -> None:
    argv = ["train", "--processed", str(tmp_path / "none"), "--registry", str(tmp_path / "cf")]
    assert main(argv) == 2
    assert "prepare" in capsys.readouterr().err
    assert not (tmp_path / "cf").exists()


def test_no_trainable_users_is_empty_data_error() -> None:
    data = synthetic_data(users=50, items=10, seed=2)
    empty = dataclasses.replace(data, trainable_user_ids=[])
    with pytest.raises(EmptyDataError, match="no trainable users"):
        run_training(empty, fast_settings(), embeddings=None)


def test_the_demo_example_ids_take_every_routing_path(built) -> None:
    """README / checklist ids: "1" is served by CF, "999999" by the cold hybrid, "3" (only low
    ratings) and a new visitor by popularity; the ids are stable for any demo size."""
    settings = ServingSettings.model_validate(
        {
            "paths": {
                "processed_dir": str(built["processed"]),
                "registry_dir": str(built["registry"]),
            }
        }
    )
    bundle = load_bundle(settings)
    engine = Engine(bundle, ServingCaches.from_settings(settings.cache), settings)
    hist = bundle.histories
    assert hist.cf_rows[hist.index["1"]] >= 0 and hist.cf_rows[hist.index["2"]] >= 0
    assert hist.cf_rows[hist.index["999999"]] < 0 and hist.cf_rows[hist.index["3"]] < 0
    assert NEW_VISITOR not in hist.index
    expected = {
        "1": (V.SEGMENT_TRAINABLE, V.STRATEGY_CF, None),
        "2": (V.SEGMENT_TRAINABLE, V.STRATEGY_CF, None),
        "999999": (V.SEGMENT_COLD, V.STRATEGY_CONTENT, V.FALLBACK_COLD_HYBRID),
        "3": (V.SEGMENT_UNKNOWN, V.STRATEGY_POPULARITY, V.FALLBACK_POPULARITY),
        NEW_VISITOR: (V.SEGMENT_UNKNOWN, V.STRATEGY_POPULARITY, V.FALLBACK_POPULARITY),
    }
    answers = {user: engine.recommend(user, topk=10, rerank=False) for user in expected}
    for user, (segment, strategy, method) in expected.items():
        answer = answers[user]
        assert (answer.segment, answer.strategy, answer.fallback_method) == (
            segment,
            strategy,
            method,
        )
        assert len({item["score"] for item in answer.items}) > 1, user
    # "3" rated everything low: the new visitor's answer minus what they bought, same scores
    seen = {bundle.catalogue.records[i]["product_id"] for i in hist.items(hist.index["3"])}
    everyone = engine.recommend(NEW_VISITOR, topk=10 + len(seen), rerank=False).items
    assert answers["3"].items == [
        {**item, "rank": rank}
        for rank, item in enumerate([i for i in everyone if i["product_id"] not in seen][:10], 1)
    ]
    batch = engine.recommend_batch(list(expected), topk=10, rerank=False)
    assert [r.items for r in batch] == [answers[u].items for u in expected]


def test_evaluate_recomputes_a_model_deployed_as_its_train_val_fit(built, tmp_path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    settings = fast_settings().model_copy(update={"deployed_fit": "train+val"})
    (config / "training.yaml").write_text(yaml.safe_dump(settings.model_dump()))
    registry = tmp_path / "cf"
    root = ["--processed", str(built["processed"]), "--registry", str(registry)]
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["train", "--model", "als", *root, "--config-dir", str(config)]) == 0
    record = Registry(registry).list()[0]
    assert record.metrics["deployed_fit"] == "train+val"
    out = tmp_path / "report.json"
    argv = ["evaluate", "--model", record.model_id, *root, "--output", str(out)]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main([*argv, "--config-dir", str(config)]) == 0
    assert "note:" not in printed.getvalue()  # recomputed, not the stored table
    hybrid = json.loads(out.read_text())["segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]
    assert hybrid["metrics"]["ndcg@10"]["mean"] == pytest.approx(record.gate_value, abs=1e-6)
    # the slice hours and the rebuild period can be changed for a recomputed table
    weekly = tmp_path / "weekly.json"
    options = ["--rebuild-period-days", "7", "--same-session-hours", "1"]
    with contextlib.redirect_stdout(io.StringIO()) as printed:
        assert main([*argv[:-1], str(weekly), *options, "--config-dir", str(config)]) == 0
    assert "popularity as of the rebuild every 7 day(s)" in printed.getvalue()
    report = json.loads(weekly.read_text())
    assert (report["rebuild_period_days"], report["same_session_hours"]) == (7.0, 1.0)
    exact = json.loads(out.read_text())["exact_segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]
    assert (
        report["exact_segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]["metrics"]
        == (exact["metrics"])
    )  # the exact-time table does not depend on the rebuild period
    with contextlib.redirect_stderr(io.StringIO()) as error:
        assert main([*argv, "--rebuild-period-days", "0", "--config-dir", str(config)]) == 2
    assert "--rebuild-period-days must be > 0" in error.getvalue()


def test_build_headline_is_realistic_with_slices_and_paired_gains(built) -> None:
    """The stored report and the registry lead with the realistic protocol (popularity as of the
    daily rebuild), keep the exact-time table, slice every row and pair each hybrid with its best
    single signal (the paired mean is the difference of the two means)."""
    current = Registry(built["registry"]).current()
    assert current is not None
    report = json.loads((Path(current.path) / V.EVALUATION_FILE).read_text())
    assert report["headline_protocol"] == "realistic"
    assert report["rebuild_period_days"] == 1.0 and report["same_session_hours"] == 24.0
    for protocol in ("segments", "exact_segments"):
        for segment, body in report[protocol].items():
            for name, row in body["rows"].items():
                parts = row["slices"]
                assert parts["same_session"]["users"] + parts["later"]["users"] <= row["users"]
                if name != "hybrid":
                    assert "vs_best_single" not in row
                    continue
                for part in (row, parts["same_session"], parts["later"]):
                    if not part["users"]:
                        continue
                    gain = part["vs_best_single"]["ndcg@10"]
                    assert gain["row"] in {"popularity", "item_knn", "content", current.model_type}
                    best = body["rows"][gain["row"]]
                    best = best if part is row else best["slices"][_slice_of(row, part)]
                    expected = (
                        part["metrics"]["ndcg@10"]["mean"] - best["metrics"]["ndcg@10"]["mean"]
                    )
                    assert gain["difference"]["mean"] == pytest.approx(expected, abs=1e-9)
                    assert gain["difference"]["low"] <= gain["difference"]["high"], segment
    trainable = report["segments"][V.SEGMENT_TRAINABLE]["rows"]
    assert trainable["hybrid"]["slices"]["same_session"]["users"] > 0
    assert trainable["hybrid"]["slices"]["later"]["users"] > 0
    metrics = current.metrics
    assert metrics["protocol"] == "realistic"
    hybrid = trainable["hybrid"]["metrics"]["ndcg@10"]["mean"]
    assert current.gate_value == pytest.approx(hybrid, abs=1e-6)
    exact = report["exact_segments"][V.SEGMENT_TRAINABLE]["rows"]["hybrid"]["metrics"]["ndcg@10"]
    assert metrics["exact"][V.SEGMENT_TRAINABLE]["hybrid"]["ndcg@10"] == pytest.approx(
        exact["mean"], abs=1e-6
    )
    assert set(metrics["slices"][V.SEGMENT_TRAINABLE]["hybrid"]) == {"same_session", "later"}
    out = built["stdout"].read_text()
    assert "realistic protocol (headline)" in out and "exact-time protocol" in out


def _slice_of(row: dict, part: dict) -> str:
    return next(name for name, value in row["slices"].items() if value is part)


def test_build_stores_the_serving_arrays_of_the_promoted_model(built) -> None:
    from recommender.serving.array_store import MANIFEST_FILE, arrays_dir

    current = Registry(built["registry"]).current()
    assert current is not None
    manifest = json.loads(
        (arrays_dir(built["processed"], current.model_id) / MANIFEST_FILE).read_text()
    )
    assert manifest["key"]["model_id"] == current.model_id
    assert manifest["key"]["data_version"] == current.data_version
    assert "serving arrays (memory-mapped by every worker)" in built["stdout"].read_text()
