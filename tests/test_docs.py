"""What a newcomer reads must be true: README / guide statements checked against the code."""

from __future__ import annotations

import json
import re
from pathlib import Path

from recommender.data.sources import demo

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "OPERATIONS_GUIDE.md", "DEPLOYMENT_OPTIMIZATION.md")


def read(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


def readme_recommend_payload() -> dict:
    """The JSON body of the README's ``curl … /recommend`` example."""
    found = re.search(r"curl -s localhost:8000/recommend .* -d '(\{[^']*\})'", read("README.md"))
    assert found is not None
    return json.loads(found.group(1))


def test_the_readme_example_user_is_a_reserved_trainable_demo_user() -> None:
    user = str(readme_recommend_payload()["user_id"])
    assert user in demo.RESERVED_USERS and demo.RESERVED_USERS[user][0].startswith("trainable")


def test_the_readme_table_of_example_ids_is_the_generators() -> None:
    table = re.findall(r"^\| (`[^|]+`) \| [^|]+ \| `(\w+)`, ", read("README.md"), flags=re.M)
    documented = {
        user.strip("`"): strategy for cell, strategy in table for user in cell.split(", ")
    }
    assert set(documented) == {*demo.RESERVED_USERS, demo.NEW_VISITOR}
    assert documented["1"] == documented["2"] == "cf"
    assert documented["999999"] == "content"
    assert documented["3"] == documented[demo.NEW_VISITOR] == "popularity"


def test_make_serve_says_it_binds_every_interface() -> None:
    makefile = read("Makefile")
    assert re.search(r"^HOST \?= 0\.0\.0\.0$", makefile, flags=re.M)
    readme = " ".join(read("README.md").split())
    assert "**`HOST` defaults to `0.0.0.0`, so the service listens on every network" in readme
    assert "`make serve HOST=127.0.0.1` keeps it on this machine" in readme
    assert "make serve HOST=127.0.0.1" in read("OPERATIONS_GUIDE.md")


def test_make_install_shows_pips_progress() -> None:
    installs = [line for line in read("Makefile").splitlines() if "pip install" in line]
    assert installs and not any("--quiet" in line or " -q " in line for line in installs)


def test_the_readme_says_what_ci_runs() -> None:
    commands = [line for line in read(".ci/run").splitlines() if line.startswith("make ")]
    assert commands == ["make lint", "make fuzz", "make test"]
    assert (
        "`.ci/run`, which runs `make lint` (ruff + mypy), then `make fuzz` (schemathesis against a"
        " live server), then `make test`" in read("README.md").replace("\n", " ")
    )
    lint = read("Makefile").split("\nlint:", 1)[1].split("\n\n", 1)[0]
    assert "ruff check" in lint and "mypy" in lint
    assert "`make lint` runs ruff (lint + format check) and mypy" in read("README.md")


def test_scripts_are_run_with_the_projects_interpreter() -> None:
    # the system python lacks aiohttp/requests: `python scripts/load_test.py` fails
    for name in DOCS:
        bare = re.findall(r"(?<![/\w.])python3? scripts/\w+\.py", read(name))
        assert bare == [], (name, bare)


def test_no_doc_repeats_the_wrong_cold_share() -> None:
    for name in DOCS:
        assert "91% of real users" not in read(name), name
    assert "60% on the Hasaki reviews (2,700 of 4,485 users" in read("README.md").replace("\n", " ")


def test_the_guide_says_what_replaces_the_checklist_backup_copy() -> None:
    guide = read("OPERATIONS_GUIDE.md").replace("\n", " ")
    assert "`cp -r artifacts/cf.backup/* artifacts/cf/` does not apply" in guide
    assert "`registry rollback` replaces it" in guide
    assert ".venv/bin/python -m recommender registry rollback" in guide
