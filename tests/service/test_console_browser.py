"""The console in a real headless Chromium against a real server on the trained fixtures.

It looks up a trainable, a cold and an unknown user and checks that the rendered top-K is exactly
``/recommend``'s answer to the request the page shows (ids and order), that moving a weight
slider changes the list (again equal to ``/recommend``), that a click shows the product's similar
items, that the page logs no error (a CSP violation would be one), that Promote without the
admin token is refused, and saves a screenshot.

Uses the system ``chromium`` + ``chromedriver`` (Debian packages; ``.ci/run`` installs them) by
explicit path: Selenium Manager never runs, nothing is downloaded. Skips only when they are not
installed. Refresh the README's screenshot with ``make console-screenshot`` (sets
``RECSYS_CONSOLE_SCREENSHOT=docs/console.png``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.fixtures.live_server import REPO, Server, live_server

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
SCREENSHOT_ENV = "RECSYS_CONSOLE_SCREENSHOT"
WAIT_S = 20.0


@pytest.fixture(scope="module")
def server(embedded_dir: Path, registry_dir: Path, tmp_path_factory) -> Iterator[Server]:
    log_dir = tmp_path_factory.mktemp("console-server")
    env = {"RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0", "RECSYS_ADMIN__PUBLIC_SAMPLE_IDS": "true"}
    with live_server(embedded_dir, registry_dir, log_dir=log_dir, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "chromium and chromedriver are not installed: `apt-get install chromium "
            "chromium-driver` (.ci/run installs them)"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def no_downloads(*args: object, **kwargs: object) -> dict:
        raise AssertionError("Selenium Manager must not run: it may download a driver")

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,2400",
        "--lang=vi-VN",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SE_OFFLINE", "true")
        patch.setattr(SeleniumManager, "binary_paths", no_downloads)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def _seq(driver) -> int:
    return int(driver.find_element("id", "recommendations").get_attribute("data-seq"))


def _wait_for_answer(driver, after: int, user: str) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    def answered(d) -> bool:
        element = d.find_element("id", "recommendations")
        return _seq(d) > after and element.get_attribute("data-user") == user

    WebDriverWait(driver, WAIT_S).until(answered)


def _rendered(driver) -> list[str]:
    items = driver.find_elements("css selector", "#recommendations > li")
    return [item.get_attribute("data-product-id") for item in items]


def _request_shown(driver) -> dict:
    text = driver.find_element("id", "request-body").get_attribute("textContent")
    return json.loads(text)


def _look_up(driver, user: str) -> None:
    before = _seq(driver)
    field = driver.find_element("id", "user-id")
    field.clear()
    field.send_keys(user)
    driver.find_element("id", "lookup").click()
    _wait_for_answer(driver, before, user)


def _answer(server: Server, body: dict) -> dict:
    response = requests.post(f"{server.url}/recommend", json=body, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_console_in_chromium(server: Server, browser, tmp_path: Path) -> None:
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    info = requests.get(f"{server.url}/model_info", timeout=10).json()
    trainable, cold = info["sample_user_ids"]["trainable"][0], info["sample_user_ids"]["cold"][0]
    driver.get(f"{server.url}/console")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element("id", "fact-model-id").text == info["model_id"]
    )
    assert "Bảng điều khiển gợi ý" in driver.find_element("tag name", "h1").text
    shown_samples = {
        b.get_attribute("data-user-id")
        for b in driver.find_elements("css selector", "button.sample")
    }
    assert {trainable, cold} <= shown_samples

    for user, segment, strategy in (
        (trainable, "trainable", "cf"),
        (cold, "cold", "content"),
        ("visitor-from-the-browser", "unknown", "popularity"),
    ):
        _look_up(driver, user)
        body = _request_shown(driver)
        assert body == {
            "user_id": user,
            "topk": 10,
            "exclude_seen": True,
            "rerank": True,
            "explain": True,
        }
        answer = _answer(server, body)
        assert (answer["segment"], answer["strategy"]) == (segment, strategy)
        assert _rendered(driver) == [r["product_id"] for r in answer["recommendations"]], user
        recommendations = driver.find_element("id", "recommendations")
        assert recommendations.get_attribute("data-segment") == segment
        first = driver.find_element("css selector", "#recommendations > li")
        signals = {
            b.get_attribute("data-signal") for b in first.find_elements("css selector", ".bar")
        }
        assert signals == set(answer["recommendations"][0]["explain"]["signals"])
        history = requests.get(
            f"{server.url}/user_history", params={"user_id": user, "limit": 20}, timeout=10
        ).json()
        shown_history = [
            li.get_attribute("data-product-id")
            for li in driver.find_elements("css selector", "#history > li")
        ]
        assert shown_history == [item["product_id"] for item in history["items"]]
        assert bool(shown_history) == (segment != "unknown")

    # the cart of an anonymous visitor as context_items: the cold hybrid, the cart left out
    context = driver.find_element("id", "context-items")
    context.send_keys("p00001, p00002")
    _look_up(driver, "visitor-with-a-cart")
    body = _request_shown(driver)
    assert body["context_items"] == ["p00001", "p00002"]
    answer = _answer(server, body)
    assert (answer["segment"], answer["fallback_method"]) == ("cold", "cold_hybrid")
    assert _rendered(driver) == [r["product_id"] for r in answer["recommendations"]]
    assert not {"p00001", "p00002"} & set(_rendered(driver))
    context.clear()

    # back to the trainable user; the least weighted signal's slider to its maximum (the keyboard
    # End key, as an operator would) changes the ranking
    _look_up(driver, trainable)
    defaults = info["hybrid"]["weights"]["trainable"]
    signal = min(
        ("cf", "content", "item_similarity", "popularity", "quality"),
        key=lambda s: defaults.get(s, 0.0),
    )
    before_ids, before = _rendered(driver), _seq(driver)
    slider = driver.find_element("id", f"w-{signal}")
    top = float(slider.get_attribute("max"))
    assert top >= max(max(w.values()) for w in info["hybrid"]["weights"].values())
    slider.send_keys(Keys.END)
    _wait_for_answer(driver, before, trainable)
    moved = _request_shown(driver)
    assert moved["rerank_weights"][signal] == top
    assert moved["rerank_weights"] == {
        s: (top if s == signal else pytest.approx(defaults.get(s, 0.0), abs=top / 100))
        for s in moved["rerank_weights"]
    }
    assert driver.find_element("id", "custom-weights").is_selected()
    after_ids = _rendered(driver)
    assert after_ids != before_ids
    assert after_ids == [r["product_id"] for r in _answer(server, moved)["recommendations"]]

    # a click on a product shows its similar items, as /similar_items answers them
    product = after_ids[0]
    driver.find_element(
        "css selector", f'#recommendations > li[data-product-id="{product}"]'
    ).click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element("id", "similar").get_attribute("data-product-id") == product
    )
    similar = requests.post(
        f"{server.url}/similar_items", json={"product_id": product, "topk": 8}, timeout=10
    ).json()
    shown_similar = [
        li.get_attribute("data-product-id")
        for li in driver.find_elements("css selector", "#similar > li")
    ]
    assert shown_similar == [item["product_id"] for item in similar["similar_items"]]

    # live health has been refreshed from /stats; no error in the page (CSP violations included)
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element("id", "request-rate").text not in ("…", "")
    )
    assert driver.find_element("id", "health-status").text == "ok"
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    # an admin action without a token is refused by the service, and the page says so
    registry_before = requests.get(f"{server.url}/registry", timeout=10).json()
    driver.find_element("css selector", "#registry-table button.promote").click()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "refused" in d.find_element("id", "registry-message").text
    )
    assert "HTTP 403 — admin_disabled" in driver.find_element("id", "registry-message").text
    assert requests.get(f"{server.url}/registry", timeout=10).json() == registry_before

    shot = tmp_path / "console.png"
    assert driver.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get(SCREENSHOT_ENV)
    if target:
        destination = Path(target) if Path(target).is_absolute() else REPO / target
        shutil.copyfile(shot, destination)
