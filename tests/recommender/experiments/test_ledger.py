"""Impressions and outcomes in the shared ledger: attribution to variant and position."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.config.experiments import ExperimentSpec, ExperimentsSettings, VariantSpec
from recommender.errors import InvalidRequestError
from recommender.events.model import Event
from recommender.events.sqlite_store import SqliteEventStore
from recommender.experiments import Attribution, ExperimentLedger, ExperimentRunner, VariantCounts

PRICES = {"p1": 100.0, "p2": 250.0, "p3": float("nan")}


def _event(eid: str, rid: str | None, product: str, kind: str) -> Event:
    return Event(eid, "u1", product, kind, 1_700_000_000.0, recommendation_id=rid)  # type: ignore[arg-type]


def _price(product: str) -> float:
    return PRICES.get(product, float("nan"))


def test_event_with_recommendation_id_is_attributed_to_variant_and_position(
    tmp_path: Path,
) -> None:
    serving = ExperimentLedger(tmp_path / "ab.sqlite3")
    clicks = ExperimentLedger(tmp_path / "ab.sqlite3")  # another worker on the same host
    serving.record_impression("r1", "exp", "hybrid", ["p3", "p1", "p2"])
    serving.record_impression("r2", "exp", "control", ["p1", "p2"])
    serving.record_impression("r3", "exp", "control", ["p2"])
    serving.flush()
    assert clicks.attribute("r1", "p2") == Attribution("exp", "hybrid", 3)
    assert clicks.attribute("r1", "p9") == Attribution("exp", "hybrid", None)
    assert clicks.attribute("nope", "p1") is None
    written = clicks.record_outcomes(
        [
            _event("e1", "r1", "p1", "view"),
            _event("e2", "r1", "p1", "view"),  # a second click on one list: one clicked list
            _event("e3", "r1", "p1", "purchase"),
            _event("e4", "r1", "p2", "purchase"),
            _event("e5", "r2", "p2", "cart"),
            _event("e6", "r2", "p9", "purchase"),  # not in the list: not attributed
            _event("e7", None, "p1", "purchase"),  # not from a recommendation
            _event("e8", "r1", "p3", "rating"),  # not an outcome type
        ],
        _price,
    )
    assert written == 6
    clicks.record_outcomes([_event("e3", "r1", "p1", "purchase")], _price)  # a retry: idempotent
    counts = serving.counts()["exp"]
    assert counts["hybrid"] == VariantCounts(
        1, clicks=1, carts=0, purchases=1, revenue=350.0, revenue_sq=350.0**2
    )
    assert counts["control"] == VariantCounts(2, clicks=0, carts=1, purchases=0)
    assert serving.click_positions() == {"exp": {"hybrid": {2: 2}}}


def test_outcomes_are_rebuilt_from_the_event_store(tmp_path: Path) -> None:
    ledger = ExperimentLedger(tmp_path / "ab.sqlite3")
    ledger.record_impression("r1", "exp", "hybrid", ["p1"])
    with SqliteEventStore(tmp_path / "events.sqlite3") as store:
        store.append([_event("e1", "r1", "p1", "purchase"), _event("e2", None, "p1", "view")])
        assert ledger.rebuild_outcomes(store, _price) == 1
        assert ledger.rebuild_outcomes(store, _price) == 1  # idempotent
    assert ledger.counts()["exp"]["hybrid"].revenue == 100.0


def test_stop_and_promote_are_shared_through_the_ledger(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        name="exp",
        variants=[VariantSpec(name="control", control=True), VariantSpec(name="b", diversity=0.5)],
    )
    settings = ExperimentsSettings(running=[spec])
    one = ExperimentRunner(settings, ExperimentLedger(tmp_path / "ab.sqlite3"))
    two = ExperimentRunner(settings, ExperimentLedger(tmp_path / "ab.sqlite3"))
    users = [f"u{i}" for i in range(50)]
    before = {u: one.choose(u) for u in users}
    assert {c.variant.name for c in before.values() if c} == {"control", "b"}
    assert ExperimentRunner.overrides(spec.variants[1]) == {"diversity": 0.5}
    one.promote("exp", "b")
    two.refresh()
    promoted = [two.choose(u) for u in users]
    assert all(c is not None and c.variant.name == "b" and not c.record for c in promoted)
    two.stop("exp")
    one.refresh()
    assert all(one.choose(u) is None for u in users)
    with pytest.raises(KeyError, match="no variant 'z'"):
        one.promote("exp", "z")
    with pytest.raises(KeyError, match="no experiment 'x'"):
        one.stop("x")
    report = one.report()[0]
    assert report["status"] == "stopped" and report["control"] == "control"
    assert [r["variant"] for r in report["variants"]] == ["control", "b"]


def test_a_bad_weight_set_fails_at_start_naming_the_variant(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        name="exp",
        variants=[
            VariantSpec(name="control", control=True),
            VariantSpec(name="b", weights={"nonsense": 1.0}),
        ],
    )
    with pytest.raises(InvalidRequestError, match=r"experiments.running\[exp\].variants\[b\]"):
        ExperimentRunner(ExperimentsSettings(running=[spec]), ExperimentLedger(tmp_path / "x"))


def test_an_unreadable_ledger_keeps_answers_going_with_the_last_states(tmp_path: Path) -> None:
    spec = ExperimentSpec(
        name="exp",
        variants=[VariantSpec(name="control", control=True), VariantSpec(name="b")],
    )
    (tmp_path / "dir.sqlite3").mkdir()  # a directory: sqlite cannot open it
    runner = ExperimentRunner(
        ExperimentsSettings(running=[spec]), ExperimentLedger(tmp_path / "dir.sqlite3")
    )
    choice = runner.choose("u1")
    assert choice is not None and choice.variant.name in {"control", "b"}
