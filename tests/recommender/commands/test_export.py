"""``recsys export``: the rows are exactly the engine's batch answers, on one or two processes,
written atomically; a bad users file is a clear error."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from recommender import cli
from recommender.commands import export as export_cmd
from recommender.config.serving import ServingSettings
from recommender.errors import InvalidDataError
from recommender.serving import Engine, ServingCaches, load_bundle


@pytest.fixture(scope="module")
def settings(embedded_dir: Path, registry_dir: Path) -> ServingSettings:
    return ServingSettings.model_validate(
        {"paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry_dir)}}
    )


@pytest.fixture(scope="module")
def engine(settings: ServingSettings) -> Engine:
    return Engine(load_bundle(settings), ServingCaches.from_settings(settings.cache), settings)


def expected_rows(engine: Engine, users: list[str], topk: int) -> pd.DataFrame:
    """The batch answers (``/batch_recommend``'s engine call), flattened like the export."""
    rows = []
    size = engine.settings.requests.max_batch_size
    for start in range(0, len(users), size):
        for rec in engine.recommend_batch(users[start : start + size], topk=topk):
            for rank, item in enumerate(rec.items, start=1):
                rows.append((rec.user_id, rec.segment, rank, item["product_id"], item["score"]))
    return pd.DataFrame(rows, columns=export_cmd.SCHEMA.names).astype({"rank": "int32"})


def test_every_known_user_exactly_as_the_batch_answers(settings, engine, tmp_path):
    out = tmp_path / "recs.parquet"
    stream = io.StringIO()
    summary = export_cmd.export(settings, out, topk=5, workers=1, chunk=97, stream=stream)
    users = list(engine.bundle.histories.user_ids)
    got = pd.read_parquet(out)
    pd.testing.assert_frame_equal(got, expected_rows(engine, users, 5))
    assert summary["users"] == len(users) and summary["rows"] == len(got)
    lines = stream.getvalue().splitlines()  # not a terminal: lines per phase with seconds, no bar
    assert [line[:5] for line in lines] == ["[1/3]", "     ", "[2/3]", "     ", "[3/3]"]
    assert re.fullmatch(r" {6}loading done in \d+\.\ds", lines[1])
    assert re.fullmatch(r" {6}ranking done in \d+\.\ds", lines[3])
    assert "users/s" in lines[-1]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_bar_over_the_users(settings, engine, tmp_path):
    users = list(engine.bundle.histories.user_ids[:300])
    screen = _Terminal()
    export_cmd.export(
        settings, tmp_path / "recs.parquet", users, 5, workers=1, chunk=50, stream=screen
    )
    # tqdm's bar with the users done/total; its final draw "300/300 [elapsed<remaining, rate]"
    assert re.search(
        r"100%\|.*\| 300/300 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+user/s\]", screen.getvalue()
    )


def test_two_processes_write_the_same_file(settings, engine, tmp_path):
    users = list(engine.bundle.histories.user_ids[:400]) + ["new-visitor"]
    one, two = tmp_path / "one.parquet", tmp_path / "two.parquet"
    export_cmd.export(settings, one, users, 10, workers=1, chunk=50, stream=io.StringIO())
    summary = export_cmd.export(settings, two, users, 10, workers=2, chunk=50, stream=io.StringIO())
    assert summary["workers"] == 2
    pd.testing.assert_frame_equal(pd.read_parquet(one), pd.read_parquet(two))
    pd.testing.assert_frame_equal(pd.read_parquet(two), expected_rows(engine, users, 10))


def test_cli_with_a_users_file(settings, engine, embedded_dir, registry_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("RECSYS_PATHS__PROCESSED_DIR", str(embedded_dir))
    monkeypatch.setenv("RECSYS_PATHS__REGISTRY_DIR", str(registry_dir))
    users = list(engine.bundle.histories.user_ids[:3])
    listing = tmp_path / "users.txt"
    listing.write_text(f"# campaign\n{users[0]}\n\n{users[1]}\n{users[0]}\n{users[2]}\n")
    out = tmp_path / "recs.parquet"
    assert cli.main(["export", "--out", str(out), "--users", str(listing), "--topk", "3"]) == 0
    got = pd.read_parquet(out)
    assert got["user_id"].drop_duplicates().tolist() == users  # file order, first occurrence
    pd.testing.assert_frame_equal(got, expected_rows(engine, users, 3))


def test_failed_export_keeps_the_previous_file(settings, tmp_path, monkeypatch):
    out = tmp_path / "recs.parquet"
    out.write_bytes(b"previous")

    def fail(users, topk):
        raise RuntimeError("ranking failed")

    monkeypatch.setattr(export_cmd, "rank_chunk", fail)
    with pytest.raises(RuntimeError):
        export_cmd.export(settings, out, ["1"], 3, workers=1, stream=io.StringIO())
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["recs.parquet"]  # no temporary litter


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.txt", None, "no such file"),
        ("empty.txt", "\n# nobody\n", "holds no user ids"),
        ("ids.csv", "customer\n1\n", "has no 'user_id' column"),
        ("gaps.csv", "user_id\n1\n\n", None),
        ("latin.txt", b"caf\xe9\n", "is not UTF-8"),
    ],
)
def test_bad_users_file_is_a_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    if message is None:  # a blank line in a CSV is skipped by the reader, not an error
        assert export_cmd.read_user_file(path) == ["1"]
        return
    with pytest.raises(InvalidDataError, match=message):
        export_cmd.read_user_file(path)


def test_cli_reports_a_bad_users_file(tmp_path, capsys):
    code = cli.main(["export", "--out", str(tmp_path / "r.parquet"), "--users", "nope.txt"])
    assert code != 0
    assert "nope.txt: no such file" in capsys.readouterr().err
