"""``recsys demo-data``: writes the demo shop; --help works."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from recommender import cli
from recommender import vocabulary as V

# only the data commands: these tests must not depend on other commands importing cleanly
DATA_COMMANDS = {"demo-data": "demo_data", "prepare": "prepare"}


@pytest.fixture(autouse=True)
def _data_commands_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMANDS", DATA_COMMANDS)


def test_demo_data_writes_the_requested_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "raw"
    assert (
        cli.main(
            ["demo-data", "--out", str(out), "--users", "900", "--products", "40", "--seed", "5"]
        )
        == 0
    )
    products = pd.read_parquet(out / "products.parquet")
    interactions = pd.read_parquet(out / "interactions.parquet")
    assert len(products) == 40 and interactions[V.USER_ID].nunique() == 900
    assert "40 products, 900 users" in capsys.readouterr().out


def test_demo_data_rejects_non_positive_sizes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["demo-data", "--out", str(tmp_path / "raw"), "--users", "0"]) == 2
    err = capsys.readouterr().err
    assert "error: demo sizes must be positive" in err and "Traceback" not in err
    assert not (tmp_path / "raw").exists()


@pytest.mark.parametrize("command", ["demo-data", "prepare"])
def test_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    assert "--out" in capsys.readouterr().out
