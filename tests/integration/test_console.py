"""The web console in a real browser: Debian's headless Chromium driven by Playwright,
against the session platform over loopback.

Sign in, see the example models, predict in English and Chinese, explain a predict as
bars, roll a version back and see it take effect, see a wrong key refused and a
predict-only key get no buttons.
Screenshots go to test-artifacts/console/; any JavaScript error fails the test.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from maas_ray import MaaS, Settings
from tests.conftest import FIGURES, ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = ROOT / "test-artifacts" / "console"
# Chromium as root in a container, with nothing reaching out to the network.
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: `make test` installs it (apt)"
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, live: Settings) -> Iterator[Any]:
    """A new tab on /console that records every JavaScript error and error log line."""
    context = browser.new_context(viewport={"width": 1280, "height": 1400})
    tab = context.new_page()
    tab.set_default_timeout(30_000)
    tab.errors = []  # type: ignore[attr-defined]
    tab.on("pageerror", lambda exc: tab.errors.append(f"page error: {exc}"))
    tab.on("console", lambda m: m.type == "error" and tab.errors.append(f"console: {m.text}"))
    tab.goto(f"{live.serve_url}/console")
    yield tab
    context.close()


@pytest.fixture(scope="module")
def roll(client: MaaS) -> dict[str, str]:
    """Two versions whose answers name them, served by the shared pool following
    @production, which moved from v1 to v2 (so a rollback has somewhere to go)."""
    from sklearn.dummy import DummyClassifier

    versions = {}
    for label in ("first", "second"):
        model = DummyClassifier(strategy="constant", constant=label).fit([[0.0]], [label])
        versions[label] = client.register("console-roll", model, input_example=[[0.0]]).version
    client.promote("console-roll", versions["first"])
    client.deploy("console-roll", alias="production", mode="shared")
    client.promote("console-roll", versions["second"])
    return versions


def _sign_in(page: Any, key: str) -> None:
    page.fill("input[name=api_key]", key)
    page.click("#signin button[type=submit]")


def _shot(page: Any, name: str) -> Path:
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _expect() -> Any:
    from playwright.sync_api import expect

    return expect


def test_a_wrong_key_is_refused_and_nothing_is_kept(page: Any) -> None:
    expect = _expect()
    _sign_in(page, "maas_wrong_wrong")
    expect(page.locator("#signin-error")).to_contain_text("key refused")
    expect(page.locator("#app")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('maas_api_key')") is None
    _shot(page, "wrong-key")
    # The refused call's 401 is the only error line the browser logs.
    assert all("401" in e for e in page.errors), page.errors


def test_sign_in_shows_the_models_and_predicts_in_two_languages(
    page: Any, admin_key: str, seeded: Any, live: Settings
) -> None:
    expect = _expect()
    started = time.monotonic()
    _sign_in(page, admin_key)
    for model in ("sentiment", "tabular", "digits", "minilm"):
        expect(page.locator(f"#deployments tr[data-model='{model}']")).to_be_visible()
        expect(page.locator(f"#catalog button[data-model='{model}']")).to_be_visible()
    row = page.locator("#deployments tr[data-model='sentiment']")
    expect(row).to_contain_text("RUNNING")
    # The key stays in the tab: not in the address, not in a cookie.
    assert page.evaluate("sessionStorage.getItem('maas_api_key')") == admin_key
    assert admin_key not in page.url
    assert not page.context.cookies()

    page.click("#catalog button[data-model='sentiment']")
    expect(page.locator("#versions tbody tr").first).to_be_visible()
    expect(page.locator("#actions")).to_be_visible()  # an admin key may change things
    answers = {}
    for language in ("English", "中文"):
        page.click(f"#examples button:text-is('{language}')")
        page.click("#try-form button[type=submit]")
        expect(page.locator("#try-answer")).to_contain_text("predictions")
        answers[language] = page.inner_text("#try-answer")
    assert "positive" in answers["English"], answers
    assert "这部电影" in page.input_value("#try-body")  # Chinese text round-trips
    expect(page.locator("#figures tbody tr").first).to_be_visible()
    page.wait_for_selector("#chart-throughput .main-svg")  # Plotly drew the chart
    shot = _shot(page, "signed-in")
    FIGURES.append(
        f"console: signed in, 4 example models listed, 2 predictions in "
        f"{time.monotonic() - started:.1f} s; screenshot {shot.relative_to(ROOT)}"
    )
    assert not page.errors, page.errors


def test_a_rollback_from_the_console_takes_effect(
    page: Any, admin_key: str, roll: dict[str, str], client: MaaS
) -> None:
    expect = _expect()
    assert client.model("console-roll").aliases["production"] == roll["second"]
    _sign_in(page, admin_key)
    page.click("#catalog button[data-model='console-roll']")
    expect(page.locator("#versions tbody tr")).to_have_count(2)
    page.click("#rollback-form button[type=submit]")
    expect(page.locator("#action-result")).to_have_text("roll back: done", timeout=120_000)
    # "done" only once the operation is: the page followed it to its end.
    ops = [o for o in client.operations() if (o.action, o.target) == ("rollback", "console-roll")]
    assert ops, "no rollback operation"
    assert ops[0].state == "succeeded", ops
    assert client.model("console-roll").aliases["production"] == roll["first"]
    # The versions table shows the alias moved back.
    first = page.locator(f"#versions tr[data-version='{roll['first']}']")
    expect(first).to_contain_text("production")
    deadline = time.monotonic() + 30  # the shared pool reads the alias within seconds
    while client.predict("console-roll", [[0.0]]) != ["first"]:
        assert time.monotonic() < deadline, "the pool still answers with the old version"
        time.sleep(0.5)
    _shot(page, "rolled-back")
    assert not page.errors, page.errors


def test_a_predict_only_key_opens_its_model_and_sees_no_change_buttons(
    page: Any, client: MaaS, seeded: Any
) -> None:
    expect = _expect()
    key = client.create_key(["predict:sentiment"], name="console-predict").key
    _sign_in(page, key)
    expect(page.locator("#who")).to_contain_text(re.compile("predict:sentiment"))
    expect(page.locator("#notice")).to_contain_text("may predict only")
    expect(page.locator("#deployments-panel")).to_be_hidden()
    page.fill("#open-form input[name=model]", "sentiment")
    page.click("#open-form button[type=submit]")
    expect(page.locator("#model-title")).to_contain_text("sentiment (version")
    page.click("#examples button:text-is('中文')")
    page.click("#try-form button[type=submit]")
    expect(page.locator("#try-answer")).to_contain_text("predictions")
    expect(page.locator("#actions")).to_be_hidden()
    _shot(page, "predict-only")
    assert not page.errors, page.errors


def test_explain_draws_each_rows_largest_contributions_as_bars(
    page: Any, admin_key: str, seeded: Any, client: MaaS
) -> None:
    expect = _expect()
    _sign_in(page, admin_key)
    page.click("#catalog button[data-model='sentiment']")
    expect(page.locator("#versions tbody tr").first).to_be_visible()
    page.click("#examples button:text-is('English')")
    page.click("#try-explain")
    row = page.locator("#explanation .explanation[data-row='0']")
    head = row.locator(".explain-head")
    # The replica builds its explainer on the first explain: give it time.
    expect(head).to_contain_text("class positive", timeout=60_000)
    expect(head).to_contain_text("prediction")
    expect(head).to_contain_text("baseline")
    bars = row.locator(".bar-row")
    expect(bars).to_have_count(10)  # the largest ten of the sentence's character n-grams
    expect(row).to_contain_text("top 10 of")
    # The bars name the features the API ranks first, in its order, with their values.
    body = json.loads(page.input_value("#try-body"))
    answer = client.explain("sentiment", payload=body)
    ranked = answer.explanations[0].attributions[:10]
    shown = bars.evaluate_all("rows => rows.map((r) => r.dataset.feature)")
    assert shown == [a.feature for a in ranked], (shown, ranked)
    names = bars.locator(".bar-name").evaluate_all("spans => spans.map((s) => s.textContent)")
    assert names == shown
    assert row.locator(".bar.up").count() + row.locator(".bar.down").count() == 10
    first = ranked[0]
    kind = "up" if first.value >= 0 else "down"
    expect(bars.first.locator(f".bar.{kind}")).to_have_attribute("style", re.compile("50%"))
    value = float(bars.first.locator(".bar-value").inner_text())  # "+0.123" or "-1.23e-4"
    assert value == pytest.approx(first.value, rel=5e-3, abs=5e-4), (value, first)
    _shot(page, "explained")
    assert not page.errors, page.errors
