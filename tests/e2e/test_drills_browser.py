"""The drill runner in a real browser: a checked upload, a small run watched to done, its report; a live drill compared."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from mobilize.settings import Settings
from tests.e2e.test_dashboard_browser import CHROMIUM, SHOTS, pytestmark  # noqa: F401 (browser tests, chromium)
from tests.support import DEMO_PASSWORD, LiveServer, seed_demo


@pytest.fixture
def live_server(sqlite_url, tmp_path):
    codes = asyncio.run(seed_demo(Settings(database_url=sqlite_url)))
    server = LiveServer(sqlite_url, tmp_path, MOBILIZE_NOTIFY_CHANNEL="sms", MOBILIZE_SMS_URL="http://127.0.0.1:9/",
                        MOBILIZE_DRILL_DIR=str(tmp_path / "drills"), MOBILIZE_DRILL_PROCESSES="2")
    yield server.base, codes
    server.stop()


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"])


def _log_in(page, base, username="planner"):
    page.goto(base + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")
    page.locator("#tabs [data-screen=drills]").click()
    from playwright.sync_api import expect
    expect(page.locator("#drill-scenario option")).to_have_count(4)  # three shipped + "your own"


def test_run_a_drill_watch_it_and_open_the_report(live_server):
    from playwright.sync_api import expect, sync_playwright

    base, _codes = live_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = _browser(p)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        _log_in(page, base)
        expect(page.locator("#drill-scenario option")).to_have_count(4)  # three shipped + "your own"
        # a mistake in a pasted scenario is named by line and field, and starts nothing
        page.select_option("#drill-scenario", "")
        yaml = page.locator("#drill-yaml").input_value()
        assert "\nhazard: flood" in yaml
        page.fill("#drill-yaml", yaml.replace("\nhazard: flood", "\nhazard: meteor", 1))
        page.fill("input[name=runs]", "3")
        page.click("#drill-start")
        expect(page.locator("#drill-errors")).to_contain_text("hazard", timeout=60_000)  # checked in another process
        expect(page.locator("#drill-errors li").first).to_contain_text("行")
        expect(page.locator("#drill-jobs")).to_contain_text("尚无推演任务")
        page.screenshot(path=str(SHOTS / "drill-error.png"), full_page=True)
        # a shipped scenario, 6 runs: progress shows, reaches done, the report opens in the page
        page.select_option("#drill-scenario", "community_epidemic")
        page.fill("input[name=runs]", "6")
        page.fill("input[name=seed]", "11")
        page.click("#drill-start")
        expect(page.locator("#drill-current")).to_be_visible()
        expect(page.locator("#drill-jobs tbody tr")).to_have_count(1)
        page.screenshot(path=str(SHOTS / "drill-running.png"), full_page=True)
        expect(page.locator("#drill-current .badge")).to_have_text("已完成", timeout=120_000)
        expect(page.locator("#drill-jobs progress")).to_have_attribute("value", "12")  # baseline + one variant
        frame = page.frame_locator("#drill-report-frame")
        expect(frame.locator("h1")).to_contain_text("演练报告")
        page.screenshot(path=str(SHOTS / "drill-report.png"), full_page=True)
        with context.expect_page() as popup:
            page.click("#drill-report-open")
        report = popup.value
        expect(report.locator("h1")).to_contain_text("演练报告")
        report.close()
        page.click("#lang")
        expect(page.locator("#drill-current .badge")).to_have_text("done")
        expect(page.locator("[data-i18n=drillJobs]")).to_have_text("Drill jobs")
        browser.close()


def test_a_live_drill_is_compared_with_the_prediction(live_server, sqlite_url):
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import create_engine, text

    base, codes = live_server
    token = httpx.post(f"{base}/api/v1/auth/token", data={"username": "planner", "password": DEMO_PASSWORD}).json()
    r = httpx.post(f"{base}/api/v1/activations", headers={"Authorization": f"Bearer {token['access_token']}",
                                                          "Idempotency-Key": "live-drill-0001"},
                   json={"scope": codes["community_a"], "hazard": "flood", "level": "III", "drill": True}, timeout=60)
    assert r.status_code == 201, r.text
    activation = r.json()["id"]
    engine = create_engine(sqlite_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        payloads = conn.execute(text("SELECT payload FROM outbox WHERE kind = 'order_notified'")).scalars().all()
    engine.dispose()
    links = [json.loads(x)["link"].rsplit("/", 1)[-1] for x in payloads]
    for i, link in enumerate(links[:6]):  # real phones answer: four acknowledge (two arrive), one declines
        action = "decline" if i == 5 else "acknowledge"
        body = {"action": action, **({"reason": "ill"} if action == "decline" else {})}
        r = httpx.post(f"{base}/api/v1/m/{link}/actions", json=body, headers={"Idempotency-Key": f"phone-{i}-answer"})
        assert r.status_code == 200, r.text
        if i < 2:
            r = httpx.post(f"{base}/api/v1/m/{link}/actions", json={"action": "arrive"},
                           headers={"Idempotency-Key": f"phone-{i}-arrive"})
            assert r.status_code == 200, r.text
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        _log_in(page, base)
        page.goto(f"{base}/#/live/{activation}")
        expect(page.locator("#live-view")).to_be_visible()
        page.locator("#compare-button").click()
        expect(page.locator("#drills-view")).to_be_visible()
        expect(page.locator("#drill-compare")).to_be_visible()
        expect(page.locator("#drill-compare")).to_contain_text(f"#{activation}")
        page.select_option("#drill-scenario", "street_flood")
        page.fill("input[name=runs]", "4")
        page.click("#drill-start")
        expect(page.locator("#drill-current .badge")).to_have_text("已完成", timeout=120_000)
        frame = page.frame_locator("#drill-report-frame")
        expect(frame.locator("h2", has_text="实测与预测")).to_be_visible()
        expect(frame.locator("section", has_text="实测与预测")).to_contain_text("拒绝")
        page.screenshot(path=str(SHOTS / "drill-measured-vs-predicted.png"), full_page=True)
        browser.close()
