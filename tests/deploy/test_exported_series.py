"""Every expression of deploy/prometheus/alerts.yml and deploy/grafana/dashboard.json names a series
(and labels, and label values where it tests equality) that a live server really exports after
ordinary traffic: recommendations, similar items, a batch, an event (and a refused one), a model
reload. `up` is written by Prometheus itself; `job` and `instance` are its target labels."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.promql import Selector, metric_names, selectors
from tests.fixtures.live_server import REPO, live_server

ADMIN = "series-admin-token"
INGEST = "series-ingest-token"
WRITTEN_BY_PROMETHEUS = {"up"}
TARGET_LABELS = {"job", "instance"}
Exported = dict[str, dict[str, set[str]]]  # sample name -> label -> values seen


def _rule_expressions() -> list[str]:
    groups = yaml.safe_load((REPO / "deploy/prometheus/alerts.yml").read_text(encoding="utf-8"))
    return [rule["expr"] for group in groups["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((REPO / "deploy/grafana/dashboard.json").read_text(encoding="utf-8"))
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


@pytest.fixture(scope="module")
def exported(embedded_dir, registry_dir, tmp_path_factory) -> Iterator[Exported]:
    logs = tmp_path_factory.mktemp("series")
    env = {"RECSYS_ADMIN_TOKEN": ADMIN, "RECSYS_INGEST_TOKEN": INGEST}
    with live_server(embedded_dir, registry_dir, log_dir=logs, env=env) as server:
        url = server.url
        popular = requests.post(f"{url}/recommend", json={"user_id": "nobody"}, timeout=10)
        product = popular.json()["recommendations"][0]["product_id"]
        for user in ("nobody", "nobody", "another-visitor"):
            assert requests.post(f"{url}/recommend", json={"user_id": user}, timeout=10).ok
        similar = requests.post(f"{url}/similar_items", json={"product_id": product}, timeout=10)
        assert similar.status_code == 200
        batch = {"user_ids": ["nobody", "x-1"], "topk": 3}
        assert requests.post(f"{url}/batch_recommend", json=batch, timeout=10).ok
        event = {"user_id": "visitor-1", "product_id": product, "type": "view"}
        tokens = {"X-Ingest-Token": INGEST}
        accepted = requests.post(f"{url}/events", json=event, headers=tokens, timeout=10)
        assert accepted.status_code == 202, accepted.text
        refused = {**event, "product_id": "no-such-product"}
        assert (
            requests.post(f"{url}/events", json=refused, headers=tokens, timeout=10).status_code
            == 422
        )
        reload = requests.post(f"{url}/reload_model", headers={"X-Admin-Token": ADMIN}, timeout=60)
        assert reload.status_code == 200, reload.text
        text = requests.get(f"{url}/metrics", timeout=10).text
    series: Exported = defaultdict(lambda: defaultdict(set))
    for family in text_string_to_metric_families(text):
        for sample in family.samples:  # histograms: _bucket, _sum, _count; counters: _total
            labels = series[sample.name]
            for key, value in sample.labels.items():
                labels[key].add(value)
    yield series


def _problems(selector: Selector, exported: Exported) -> list[str]:
    if selector.name in WRITTEN_BY_PROMETHEUS:
        return []
    if selector.name not in exported:
        return [f"{selector.name}: not exported"]
    problems = []
    labels = exported[selector.name]
    for key, operator, value in selector.matchers:
        if key in TARGET_LABELS:
            continue
        if key not in labels:
            problems.append(f"{selector.name}: no label {key!r}")
        elif operator == "=" and value not in labels[key]:
            problems.append(f"{selector.name}: {key}={value!r} never seen ({sorted(labels[key])})")
        elif operator == "=~" and "|" in value and not set(value.split("|")) <= labels[key]:
            problems.append(f"{selector.name}: {key}=~{value!r} names values never seen")
    return problems


@pytest.mark.slow
@pytest.mark.parametrize("source", ["rules", "dashboard"])
def test_every_expression_names_exported_series(exported, source):
    expressions = _rule_expressions() if source == "rules" else _dashboard_expressions()
    assert len(expressions) == (11 if source == "rules" else 27)
    problems = [
        f"{expr.strip()[:60]}...: {problem}"
        for expr in expressions
        for selector in selectors(expr)
        for problem in _problems(selector, exported)
    ]
    assert problems == []


def test_the_dashboard_shows_every_series_the_rules_alert_on():
    in_rules = set().union(*(metric_names(expr) for expr in _rule_expressions()))
    on_dashboard = set().union(*(metric_names(expr) for expr in _dashboard_expressions()))
    assert in_rules - on_dashboard == set()
    assert len(in_rules) == 12


def test_selector_reader_on_a_known_expression():
    expr = (
        'histogram_quantile(0.99, sum by (le, endpoint) (rate(recsys_x_bucket{job="recsys",'
        'endpoint=~"/a|/b"}[$__rate_interval]))) > 0.5 and on (instance) '
        "(time() - recsys_y) > 1e3 or vector(0) unless count(up == 1)"
    )
    assert selectors(expr) == [
        Selector("recsys_x_bucket", (("job", "=", "recsys"), ("endpoint", "=~", "/a|/b"))),
        Selector("recsys_y", ()),
        Selector("up", ()),
    ]
