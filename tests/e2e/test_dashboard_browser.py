"""The readiness dashboard in a real browser (Debian's chromium through Playwright), network to the outside cut."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import httpx
import pytest

from mobilize.settings import Settings
from tests.support import DEMO_PASSWORD, LiveServer, seed_demo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("MOBILIZE_SCREENSHOTS", "test-artifacts/screens"))

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def live_server(sqlite_url, tmp_path):
    codes = asyncio.run(seed_demo(Settings(database_url=sqlite_url)))
    # Messages wait in the outbox (the "gateway" is a closed port), so their links stay readable for the test.
    server = LiveServer(sqlite_url, tmp_path, MOBILIZE_NOTIFY_CHANNEL="sms", MOBILIZE_SMS_URL="http://127.0.0.1:9/")
    yield server.base, codes
    server.stop()


def test_log_in_and_read_readiness(live_server):
    from playwright.sync_api import expect, sync_playwright

    base, codes = live_server
    SHOTS.mkdir(parents=True, exist_ok=True)
    outside: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        page = browser.new_page(viewport={"width": 1440, "height": 900})

        def guard(route):
            if route.request.url.startswith(base):
                route.continue_()
            else:
                outside.append(route.request.url)
                route.abort()

        page.route("**/*", guard)
        page.goto(base + "/")
        expect(page.locator("h1")).to_have_text("平急转换指挥平台")
        page.fill("input[name=username]", "street")
        page.fill("input[name=password]", "wrong-password")
        page.keyboard.press("Enter")
        expect(page.locator("#login-error")).to_contain_text("用户名或密码错误")
        page.fill("input[name=password]", DEMO_PASSWORD)
        page.keyboard.press("Enter")  # keyboard only
        expect(page.locator("#unit-title")).to_contain_text(codes["street"])
        expect(page.locator("#readiness .stat")).to_have_count(9)
        expect(page.locator("#people tbody tr").first).to_be_visible()
        assert page.locator("#groups tbody tr").count() == 7
        page.screenshot(path=str(SHOTS / "readiness-desktop.png"), full_page=True)

        page.locator(f".node[data-code='{codes['community_a']}']").click()
        expect(page.locator("#unit-title")).to_contain_text(codes["community_a"])
        page.select_option("#filters select[name=party]", "true")
        page.click("#filters button[type=submit]")
        party = page.locator("#people tbody tr td:nth-child(7)")
        expect(party.filter(has_text="否")).to_have_count(0)
        expect(party.first).to_have_text("是")

        page.click("#lang")
        expect(page.locator("h1")).to_have_text("Emergency switch command")
        expect(page.locator("[data-i18n=orgTree]")).to_have_text("Org tree")
        page.set_viewport_size({"width": 360, "height": 780})
        page.screenshot(path=str(SHOTS / "readiness-phone-en.png"), full_page=True)
        browser.close()
    assert outside == [], f"the page tried to reach the outside: {outside}"


def test_phone_link_page_acknowledges_on_a_small_screen(live_server, sqlite_url):
    from playwright.sync_api import expect, sync_playwright
    from sqlalchemy import create_engine, text

    base, codes = live_server
    admin = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD}).json()
    r = httpx.post(f"{base}/api/v1/activations", headers={"Authorization": f"Bearer {admin['access_token']}"},
                   json={"scope": codes["community_a"], "hazard": "flood", "level": "III", "drill": True}, timeout=60)
    assert r.status_code == 201, r.text
    engine = create_engine(sqlite_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        # committed before the 201 left the server (not after, as a yield-dependency would)
        assert conn.execute(text("SELECT count(*) FROM outbox")).scalar() == r.json()["summary"]["filled"]
        payload = conn.execute(text("SELECT payload FROM outbox WHERE kind = 'order_notified' LIMIT 1")).scalar()
    engine.dispose()
    import json

    link = json.loads(payload)["link"]
    path = "/" + link.split("/", 3)[3]
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu",
                                                                    "--disable-background-networking"])
        page = browser.new_page(viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
        page.goto(base + path)
        expect(page.locator("#drill")).to_be_visible()  # a drill is marked 演练 on the phone too
        expect(page.locator("#status")).to_have_text("待确认")
        button = page.locator("[data-action=acknowledge]")
        box = button.bounding_box()
        assert box["height"] >= 48 and box["width"] >= 300  # a thumb can hit it
        page.screenshot(path=str(SHOTS / "phone-order.png"), full_page=True)
        button.click()
        expect(page.locator("#banner")).to_have_text("已提交")
        expect(page.locator("#status")).to_have_text("已确认")
        page.reload()  # the state comes from the server, not the page
        expect(page.locator("#status")).to_have_text("已确认")
        expect(page.locator("[data-action=acknowledge]")).to_be_hidden()
        page.screenshot(path=str(SHOTS / "phone-acknowledged.png"), full_page=True)
        browser.close()
