"""A/B experiments over HTTP: tagged answers, attribution of events, the admin table."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from recommender.config.experiments import ExperimentSpec
from recommender.experiments import assign
from tests.service.conftest import ADMIN_ENV, TOKEN, make_client

INGEST = {"X-Ingest-Token": "ingest-secret"}
ADMIN = {"X-Admin-Token": TOKEN}
EXPERIMENT: dict[str, Any] = {
    "name": "diversity",
    "traffic": 1.0,
    "variants": [
        {"name": "control", "control": True, "rerank": False},
        {"name": "diverse", "rerank": True, "diversity": 0.9},
    ],
}
USERS = ["t0", "t1", "t2", "t3", "t4", "t5", "c0", "c1", "c2", "c3"]


@pytest.fixture()
def ab_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[TestClient]:
    monkeypatch.setenv("RECSYS_INGEST_TOKEN", INGEST["X-Ingest-Token"])
    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    with make_client(
        events={"sqlite_path": str(tmp_path / "events.sqlite3")},
        experiments={"ledger_path": str(tmp_path / "ab.sqlite3"), "running": [EXPERIMENT]},
    ) as client:
        yield client


def _variant(user: str) -> str:
    chosen = assign(ExperimentSpec.model_validate(EXPERIMENT), user)
    assert chosen is not None
    return chosen.name


def test_answers_carry_recommendation_id_and_the_users_variant(ab_client: TestClient) -> None:
    answers = [ab_client.post("/recommend", json={"user_id": u}).json() for u in USERS]
    assert {a["variant"] for a in answers} == {"control", "diverse"}
    for user, answer in zip(USERS, answers, strict=True):
        assert answer["experiment"] == "diversity"
        assert answer["variant"] == _variant(user)
        assert len(answer["recommendation_id"]) == 32
    assert len({a["recommendation_id"] for a in answers}) == len(USERS)
    again = ab_client.post("/recommend", json={"user_id": "t0"}).json()
    assert again["variant"] == answers[0]["variant"]  # stable
    assert again["recommendation_id"] != answers[0]["recommendation_id"]  # one id per answer
    anon = ab_client.post("/recommend", json={"user_id": "visitor", "session_id": "s-42"}).json()
    assert anon["variant"] == _variant("s-42")


def test_batch_answers_rank_each_user_with_their_variant(ab_client: TestClient) -> None:
    batch = ab_client.post("/batch_recommend", json={"user_ids": USERS, "topk": 5}).json()
    results = batch["results"]
    assert [r["user_id"] for r in results] == USERS
    for result in results:
        single = ab_client.post("/recommend", json={"user_id": result["user_id"], "topk": 5})
        assert result["variant"] == single.json()["variant"]
        assert [p["product_id"] for p in result["recommendations"]] == [
            p["product_id"] for p in single.json()["recommendations"]
        ]
    assert len({r["recommendation_id"] for r in results}) == len(USERS)


def test_events_with_recommendation_id_are_attributed_in_the_admin_table(
    ab_client: TestClient,
) -> None:
    answer = ab_client.post("/recommend", json={"user_id": "t0", "topk": 5}).json()
    rid, variant = answer["recommendation_id"], answer["variant"]
    second = answer["recommendations"][1]
    events = [
        {
            "user_id": "t0",
            "product_id": second["product_id"],
            "type": "view",
            "recommendation_id": rid,
        },
        {
            "user_id": "t0",
            "product_id": second["product_id"],
            "type": "purchase",
            "recommendation_id": rid,
        },
    ]
    assert ab_client.post("/events", headers=INGEST, json=events).status_code == 202
    table = ab_client.get("/experiments", headers=ADMIN).json()["experiments"][0]
    assert table["experiment"] == "diversity" and table["status"] == "running"
    rows = {r["variant"]: r for r in table["variants"]}
    row = rows[variant]
    assert (row["impressions"], row["clicks"], row["purchases"]) == (1, 1, 1)
    assert row["revenue"] == second["price"]
    assert row["clicks_by_position"] == {"2": 1}
    assert row["ctr"]["value"] == 1.0
    other = next(name for name in rows if name != variant)
    assert rows[other]["impressions"] == 0
    metrics = ab_client.get("/metrics").text
    assert f'recsys_experiment_impressions{{experiment="diversity",variant="{variant}"}} 1.0' in (
        metrics
    )


def test_admin_endpoints_need_the_token_and_stop_and_promote(ab_client: TestClient) -> None:
    assert ab_client.get("/experiments").status_code == 401
    assert ab_client.get("/experiments", headers={"X-Admin-Token": "wrong"}).status_code == 403
    assert ab_client.post("/experiments/diversity/stop").status_code == 401
    missing = ab_client.post("/experiments/nope/stop", headers=ADMIN)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_experiment"
    bad = ab_client.post("/experiments/diversity/promote/zzz", headers=ADMIN)
    assert bad.status_code == 404
    promoted = ab_client.post("/experiments/diversity/promote/diverse", headers=ADMIN)
    assert promoted.json() == {
        "status": "promoted",
        "experiment": "diversity",
        "winner": "diverse",
        "model_id": None,
    }
    answers = [ab_client.post("/recommend", json={"user_id": u}).json() for u in USERS]
    assert {a["variant"] for a in answers} == {"diverse"}
    assert ab_client.post("/experiments/diversity/stop", headers=ADMIN).status_code == 200
    stopped = ab_client.post("/recommend", json={"user_id": "t0"}).json()
    assert stopped["variant"] is None and stopped["experiment"] is None
    assert len(stopped["recommendation_id"]) == 32
    table = ab_client.get("/experiments", headers=ADMIN).json()["experiments"][0]
    assert table["status"] == "stopped"
    assert sum(r["impressions"] for r in table["variants"]) == 0  # promoted lists not counted


def test_answers_outside_experiments_still_carry_a_recommendation_id() -> None:
    with make_client() as client:
        answer = client.post("/recommend", json={"user_id": "t0"}).json()
        assert answer["variant"] is None and len(answer["recommendation_id"]) == 32
        batch = client.post("/batch_recommend", json={"user_ids": ["t0", "x"]}).json()
        assert all(len(r["recommendation_id"]) == 32 for r in batch["results"])


def test_a_ledger_that_is_down_costs_the_table_never_an_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scripts._server import free_port

    monkeypatch.setenv(ADMIN_ENV, TOKEN)
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with make_client(
        experiments={"ledger_backend": "redis", "redis_url": url, "running": [EXPERIMENT]}
    ) as client:
        answer = client.post("/recommend", json={"user_id": "t0"})
        assert answer.status_code == 200 and answer.json()["variant"] == _variant("t0")
        table = client.get("/experiments", headers=ADMIN)
        assert table.status_code == 503
        assert table.json()["error"]["code"] == "ledger_unavailable"
        assert client.post("/experiments/diversity/stop", headers=ADMIN).status_code == 503
        metrics = client.get("/metrics")
        assert metrics.status_code == 200 and "recsys_experiment_impressions{" not in metrics.text
