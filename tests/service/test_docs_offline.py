"""/docs and /redoc work offline: their assets come from this server (fastapi-offline), and every
request model carries examples that the demo shop answers (issue 10)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from recommender.config.serving import ServingSettings
from service.api import create_app

ASSET = re.compile(r"""(?:src|href|spec-url)\s*=\s*["']([^"']+)["']|url:\s*'([^']+)'""")
REQUEST_MODELS = ("RecommendRequest", "BatchRecommendRequest", "SimilarItemsRequest")


def _references(html: str) -> list[str]:
    return [a or b for a, b in ASSET.findall(html)]


@pytest.mark.parametrize(
    "page, assets",
    [
        ("/docs", {"swagger-ui.css", "swagger-ui-bundle.js", "favicon.png"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png"}),
    ],
)
def test_docs_pages_reference_only_this_server(client, page, assets):
    response = client.get(page)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    html = response.text
    assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", html, re.IGNORECASE), html
    references = _references(html)
    assert {ref.rsplit("/", 1)[-1] for ref in references if "static" in ref} == assets
    assert "/openapi.json" in references
    for ref in references:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    assert '"validatorUrl": null' in html or page == "/redoc"  # no call to an online validator


def test_every_request_model_has_examples(client):
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for name in (*REQUEST_MODELS, "RecommendFilters"):
        assert len(schemas[name]["examples"]) >= 2, name


@pytest.fixture(scope="module")
def demo_client(embedded_dir, registry_dir):
    settings = ServingSettings.model_validate(
        {
            "paths": {"processed_dir": str(embedded_dir), "registry_dir": str(registry_dir)},
            "reload": {"poll_interval_seconds": 0},
            "warmup": {"enabled": False},
        }
    )
    with TestClient(create_app(settings)) as client:
        yield client


def test_examples_answer_on_the_demo_shop(demo_client):
    spec = demo_client.get("/openapi.json").json()
    paths = {"RecommendRequest": "/recommend", "BatchRecommendRequest": "/batch_recommend"}
    paths["SimilarItemsRequest"] = "/similar_items"
    for name, path in paths.items():
        for example in spec["components"]["schemas"][name]["examples"]:
            response = demo_client.post(path, json=example)
            assert response.status_code == 200, (path, example, response.text)
            body = response.json()
            listed = body.get("recommendations") or body.get("similar_items") or body["results"]
            assert listed, (path, example)
