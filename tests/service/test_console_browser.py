"""The console in a real headless Chromium against a real server on the trained fixtures.

It looks up a trainable, a cold and an unknown user and checks that the rendered top-K is exactly
``/recommend``'s answer to the request the page shows (ids and order), that moving a weight
slider changes the list (again equal to ``/recommend``), that a click shows the product's similar
items, that the page logs no error (a CSP violation would be one), that Promote without the
admin token is refused, and saves a screenshot. A second server runs a three-arm experiment
(control, a diversity arm, another registered model): the console's per-variant table shows
exactly ``GET /experiments``'s numbers, and its Promote button promotes.

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
        settled = d.find_element("tag name", "body").get_attribute("data-state") == "ready"
        return settled and _seq(d) > after and element.get_attribute("data-user") == user

    WebDriverWait(driver, WAIT_S).until(answered)


def _attributes(driver, selector: str, name: str) -> list[str]:
    """Attribute ``name`` of every element matching ``selector``, read in one script call: a
    snapshot, never a list that a re-render replaces between two WebDriver calls (stale)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]),"
        " (e) => e.getAttribute(arguments[1]));",
        selector,
        name,
    )


def _rendered(driver) -> list[str]:
    return _attributes(driver, "#recommendations > li", "data-product-id")


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
    shown_samples = set(_attributes(driver, "button.sample", "data-user-id"))
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
        signals = set(_attributes(driver, "#recommendations > li:first-child .bar", "data-signal"))
        assert signals == set(answer["recommendations"][0]["explain"]["signals"])
        history = requests.get(
            f"{server.url}/user_history", params={"user_id": user, "limit": 20}, timeout=10
        ).json()
        shown_history = _attributes(driver, "#history > li", "data-product-id")
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
    shown_similar = _attributes(driver, "#similar > li", "data-product-id")
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


AB_TOKEN = "console-ab-token"
AB_INGEST = "console-ab-ingest"


@pytest.fixture(scope="module")
def ab_server(embedded_dir: Path, registry_dir: Path, tmp_path_factory) -> Iterator[Server]:
    """A server running a three-arm experiment: control, a weight/diversity arm, another model."""
    from recommender.registry import Registry

    registry = Registry(registry_dir)
    current = registry.current()
    assert current is not None
    other = next(r.model_id for r in registry.list() if r.model_id != current.model_id)
    experiment = {
        "name": "homepage",
        "variants": [
            {"name": "control", "control": True},
            {"name": "diverse", "rerank": True, "diversity": 0.9},
            {"name": "challenger", "model_id": other},
        ],
    }
    log_dir = tmp_path_factory.mktemp("console-ab-server")
    env = {
        "RECSYS_RELOAD__POLL_INTERVAL_SECONDS": "0",
        "RECSYS_ADMIN_TOKEN": AB_TOKEN,
        "RECSYS_INGEST_TOKEN": AB_INGEST,
        "RECSYS_EXPERIMENTS__LEDGER_PATH": str(log_dir / "ab.sqlite3"),
        "RECSYS_EXPERIMENTS__RUNNING": json.dumps([experiment]),
    }
    with live_server(embedded_dir, registry_dir, log_dir=log_dir, env=env) as running:
        yield running


def _ab_traffic(server: Server) -> None:
    """60 answers; a click on the first product of every 2nd, a cart of every 3rd and a purchase
    of the second product of every 5th list."""
    events = []
    for n in range(60):
        user = str(n + 1)
        answer = _answer(server, {"user_id": user, "topk": 5})
        rid, listed = answer["recommendation_id"], answer["recommendations"]
        for every, kind, item in ((2, "view", 0), (3, "cart", 0), (5, "purchase", 1)):
            if n % every == 0:
                events.append(
                    {
                        "user_id": user,
                        "product_id": listed[item]["product_id"],
                        "type": kind,
                        "recommendation_id": rid,
                    }
                )
    response = requests.post(
        f"{server.url}/events", json=events, headers={"X-Ingest-Token": AB_INGEST}, timeout=10
    )
    assert response.status_code == 202, response.text


def _rate(value: float) -> str:
    return f"{value * 100:.2f} %"


def _expected_cells(row: dict) -> dict[str, tuple[str, str, str]]:
    """metric -> (value, interval, p) as the console writes them."""
    out = {}
    for metric in ("ctr", "cart_rate", "purchase_rate", "revenue_per_impression"):
        cell = row[metric]
        low, high = cell["ci95"]
        if metric == "revenue_per_impression":
            shown, ci = f"{cell['value']:.2f}", f"[{low:.2f}, {high:.2f}]"
        else:
            shown, ci = _rate(cell["value"]), f"[{low * 100:.2f}, {high * 100:.2f}] %"
        test = cell.get("vs_control")
        p = (
            "control"
            if test is None
            else f"{test['p_value']:.4f}" + (" *" if test["significant"] else "")
        )
        out[metric] = (shown, ci, p)
    return out


def test_console_experiment_table_shows_the_admin_numbers(ab_server: Server, browser) -> None:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    driver.get_log("browser")  # drop what an earlier test left (its refused promote)
    _ab_traffic(ab_server)
    admin = {"X-Admin-Token": AB_TOKEN}
    report = requests.get(f"{ab_server.url}/experiments", headers=admin, timeout=10).json()
    (experiment,) = report["experiments"]
    assert sum(r["impressions"] for r in experiment["variants"]) == 60
    assert [m["model_id"] for m in report["variant_models"]["loaded"]] != []

    driver.get(f"{ab_server.url}/console")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: "admin token" in d.find_element("id", "experiments").text
    )
    driver.find_element("id", "admin-token").send_keys(AB_TOKEN)
    driver.find_element("id", "token-save").click()
    selector = '#experiments .experiment[data-experiment="homepage"] tbody tr'
    WebDriverWait(driver, WAIT_S).until(
        lambda d: len(d.find_elements("css selector", selector)) == 3
    )
    # one snapshot in the page (the table is redrawn every refresh)
    shown = driver.execute_script(
        """
        return [...document.querySelectorAll(arguments[0])].map((tr) => {
          const cells = {};
          for (const td of tr.querySelectorAll("td[data-metric]")) {
            const value = td.querySelector(".value"), ci = td.querySelector(".ci");
            cells[td.dataset.metric] = value ? [value.textContent, ci.textContent] : td.textContent;
          }
          return [tr.dataset.variant, cells];
        });
        """,
        selector,
    )
    assert [variant for variant, _ in shown] == ["control", "diverse", "challenger"]
    for (_, cells), row in zip(shown, experiment["variants"], strict=True):
        assert cells["impressions"] == str(row["impressions"])
        for metric, (value, ci, p) in _expected_cells(row).items():
            assert cells[metric] == [value, ci], metric
            assert cells[f"{metric}-p"] == p, metric
    verdict = driver.execute_script(
        'return document.querySelector(".experiment .ab-verdict").textContent'
    )
    assert verdict.startswith(experiment["verdict"]["ctr"])

    # Promote on the weights arm (confirmed), as GET /experiments then reports; clicked from a
    # timer so the confirm dialog does not block the script, on whatever table is current
    driver.execute_script(
        "setTimeout(() => document.querySelector(arguments[0]).click(), 0)",
        '.experiment tr[data-variant="diverse"] button.ab-promote',
    )
    WebDriverWait(driver, WAIT_S).until(expected_conditions.alert_is_present())
    driver.switch_to.alert.accept()
    WebDriverWait(driver, WAIT_S).until(
        lambda d: (
            d.execute_script('return document.querySelector(".experiment").dataset.status')
            == "promoted"
        )
    )
    assert "homepage: promoted → diverse" in driver.find_element("id", "experiments-message").text
    after = requests.get(f"{ab_server.url}/experiments", headers=admin, timeout=10).json()
    assert (after["experiments"][0]["status"], after["experiments"][0]["winner"]) == (
        "promoted",
        "diverse",
    )
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
