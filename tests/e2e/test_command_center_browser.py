"""The command center in a real browser (Debian's chromium through Playwright), the network to the outside cut.

Log in → readiness → the one key over a community with the typed confirmation (keyboard only) → a member
acknowledges on a phone-sized page and the board shows it live → a decline leads to a reassignment on the
board → a dropped websocket catches up from the event log → raise the level → switch back (战转平).
Screenshots of each screen at 1440×900 and 390×844 go to ``test-artifacts/screens/`` (``cc-*.png``).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from pathlib import Path

import httpx
import pytest

import tests.support as support
from mobilize.settings import Settings
from tests.support import DEMO_PASSWORD, LiveServer, seed_demo

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(os.environ.get("MOBILIZE_SCREENSHOTS", "test-artifacts/screens"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"),
]


@pytest.fixture
def server(sqlite_url, tmp_path, monkeypatch):
    """The app on a free port whose own origin may open websockets (the default allows only :8000).

    Notifications go to an SMS gateway that is down (a closed local port): messages stay in the outbox with
    their personal link, which is where the test reads the links from, as a phone would get them.
    """
    codes = asyncio.run(seed_demo(Settings(database_url=sqlite_url)))
    port, dead = support._free_port(), support._free_port()
    monkeypatch.setattr(support, "_free_port", lambda: port)
    live = LiveServer(sqlite_url, tmp_path, MOBILIZE_ALLOWED_ORIGINS=json.dumps([f"http://127.0.0.1:{port}"]),
                      MOBILIZE_NOTIFY_CHANNEL="sms", MOBILIZE_SMS_URL=f"http://127.0.0.1:{dead}/sms",
                      MOBILIZE_PUBLIC_URL=f"http://127.0.0.1:{port}")
    yield live.base, codes, sqlite_url
    live.stop()


def _links(sqlite_url: str, activation_id: int) -> list[dict]:
    """The personal links of an activation's notified orders, from the outbox (as the phone test reads them)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(sqlite_url.replace("+aiosqlite", ""))
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT order_id, person_id, payload FROM outbox WHERE kind = 'order_notified' "
                                 "AND activation_id = :a ORDER BY id"), {"a": activation_id}).all()
    engine.dispose()
    out = []
    for order_id, person_id, payload in rows:
        link = json.loads(payload).get("link")
        if link:
            out.append({"order": order_id, "person": person_id, "path": "/" + link.split("/", 3)[3]})
    return out


def _browser(p):
    return p.chromium.launch(executable_path=CHROMIUM, args=ARGS)


def _guard(context, base: str, outside: list[str]) -> None:
    def guard(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", guard)


def _login(page, base: str, username: str) -> None:
    page.goto(base + "/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.keyboard.press("Enter")


def _shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"cc-{name}.png"), full_page=True)


def _confirm_by_keyboard(page, name: str) -> None:
    """The dialog has the focus: a wrong name is refused, the exact name and Enter confirm."""
    from playwright.sync_api import expect

    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-input")).to_be_focused()
    expect(page.locator("#confirm-ok")).to_have_attribute("aria-disabled", "true")
    page.keyboard.type(name[:-1])
    page.keyboard.press("Enter")
    expect(page.locator("#confirm-error")).not_to_be_empty()
    expect(dialog).to_be_visible()
    page.keyboard.type(name[-1])
    expect(page.locator("#confirm-ok")).to_have_attribute("aria-disabled", "false")
    page.keyboard.press("Enter")


def test_command_center_activation_live_board_and_switch_back(server):
    from playwright.sync_api import expect, sync_playwright

    base, codes, sqlite_url = server
    outside: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        desk = browser.new_context(viewport=DESKTOP)
        _guard(desk, base, outside)
        # Every websocket goes through here, so the test can drop it and hold reconnects back.
        sockets: list = []
        hold = {"on": False}

        def ws_route(ws):
            if hold["on"]:
                ws.close(code=1001, reason="network down")
                return
            ws.connect_to_server()
            sockets.append(ws)

        desk.route_web_socket("**/api/v1/ws*", ws_route)
        page = desk.new_page()

        # Log in (keyboard) as the street's command center: its subtree only.
        _login(page, base, "street")
        expect(page.locator("#unit-title")).to_contain_text(codes["street"])
        expect(page.locator("#tree .node")).to_have_count(9)  # the street and its 8 communities, nothing else
        expect(page.locator("#coverage-summary .stat")).to_have_count(4)
        expect(page.locator("#teams tbody tr").first).to_be_visible()
        expect(page.locator("#people tbody tr").first).to_be_visible()
        _shot(page, "readiness-desktop")

        # Open a person.
        page.locator("#people tbody tr button[data-person]").first.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#person-dialog")).to_be_visible()
        expect(page.locator("#person-body dl dt").first).to_be_visible()
        _shot(page, "person-desktop")
        page.keyboard.press("Escape")
        expect(page.locator("#person-dialog")).to_be_hidden()

        # The one key, keyboard only: pick the community, the tab, the plan, the level, drill; press; confirm.
        node = page.locator(f".node[data-code='{codes['community_a']}']")
        name = node.inner_text().split()[0]
        node.focus()
        page.keyboard.press("Enter")
        expect(page.locator("#unit-title")).to_contain_text(codes["community_a"])
        page.locator("#tabs [data-screen=activate]").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#activate-scope")).to_contain_text(name)
        page.locator("#plan-choices input[value=flood]").focus()
        page.keyboard.press("Space")
        page.locator("#level-choices input[value=III]").focus()
        page.keyboard.press("Space")
        page.locator("#drill-check").focus()
        page.keyboard.press("Space")
        expect(page.locator("#activate-drill-flag .badge.drill")).to_have_text("演练")
        expect(page.locator("#preview .stat").first).to_be_visible()
        expect(page.locator("#preview")).to_contain_text("技能需求与预计缺口")
        _shot(page, "activate-desktop")
        page.locator("#one-key").focus()
        page.keyboard.press("Enter")
        expect(page.locator("#confirm-prompt .must-type")).to_have_text(name)
        _shot(page, "confirm-desktop")
        started = {"n": 0}
        page.on("request", lambda r: started.update(n=started["n"] + 1)
                if r.method == "POST" and r.url.endswith("/api/v1/activations") else None)
        _confirm_by_keyboard(page, name)

        # The live view: drill marked, stats from the websocket snapshot.
        expect(page).to_have_url(re.compile(r"#/live/\d+$"))
        activation_id = int(page.url.rsplit("/", 1)[1])
        assert started["n"] == 1
        expect(page.locator("#drill-banner")).to_be_visible()
        expect(page.locator("#live-title .badge.drill")).to_have_text("演练")
        expect(page.locator("#live-conn")).to_contain_text("实时")
        expect(page.locator("#kpis [data-kpi=slots] b")).not_to_have_text("0")
        expect(page.locator("#posts-table tbody tr").first).to_be_visible()
        expect(page.locator("#branches details").first).to_be_visible()
        expect(page.locator("#timeline li[data-event='activation.started']")).to_have_count(1)
        expect(page.locator("#map svg .map-community")).to_have_count(1)
        expect(page.locator("#chart-time canvas")).to_have_count(1)
        expect(page.locator("#activation-list tbody tr").first.locator(".badge.drill")).to_be_visible()
        page.wait_for_timeout(300)
        _shot(page, "live-desktop")

        links = _links(sqlite_url, activation_id)
        assert len(links) >= 3, links
        acked = page.locator("#kpis [data-kpi=acknowledged] b")
        expect(acked).to_have_text("0")

        # A member acknowledges on a phone-sized page; the board shows it within a second.
        phone_ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        _guard(phone_ctx, base, outside)
        phone = phone_ctx.new_page()
        first = links[0]
        phone.goto(base + first["path"])
        expect(phone.locator("#drill")).to_be_visible()
        expect(phone.locator("#status")).to_have_text("待确认")
        SHOTS.mkdir(parents=True, exist_ok=True)
        phone.screenshot(path=str(SHOTS / "cc-phone-order.png"), full_page=True)
        chip = page.locator(f"#posts [data-order='{first['order']}']")
        expect(chip).to_contain_text("待确认")
        phone.locator("[data-action=acknowledge]").click()
        expect(phone.locator("#status")).to_have_text("已确认")
        t0 = time.monotonic()
        expect(chip).to_contain_text("已确认", timeout=1000)
        expect(acked).to_have_text("1", timeout=1500)
        seen = time.monotonic() - t0
        expect(page.locator("#timeline li[data-event='order.acknowledged']")).to_have_count(1)
        assert seen < 1.5, f"the acknowledgement took {seen:.2f}s to show"

        # Another member declines (ill): the post is given to a backup, on the board without a reload.
        second = links[1]
        phone.goto(base + second["path"])
        phone.locator("[data-action=decline]").click()
        phone.locator("input[name=reason][value=ill]").check()
        phone.locator("#decline-form button[type=submit]").click()
        expect(phone.locator("#status")).to_have_text("已拒绝")
        expect(page.locator(f"#posts [data-order='{second['order']}']")).to_have_count(0, timeout=3000)
        expect(page.locator("#timeline li[data-event='order.declined']")).to_contain_text("生病")
        replaced = page.locator("#timeline li[data-event='order.notified']").filter(has_text="改派")
        expect(replaced).to_have_count(1, timeout=3000)
        expect(page.locator("#kpis [data-kpi=declined] b")).to_have_text("1", timeout=2500)
        page.wait_for_timeout(300)
        _shot(page, "live-after-decline-desktop")

        # The network drops: the page says so, reconnects by itself and catches up from the event log.
        hold["on"] = True
        for ws in sockets:
            ws.close(code=1006, reason="network drop")
        expect(page.locator("#live-conn")).to_contain_text("重连")
        third = links[2]
        phone.goto(base + third["path"])
        phone.locator("[data-action=acknowledge]").click()
        expect(phone.locator("#status")).to_have_text("已确认")
        _shot(page, "live-reconnecting-desktop")
        hold["on"] = False
        expect(page.locator("#live-conn")).to_contain_text("实时", timeout=20000)
        expect(page.locator(f"#posts [data-order='{third['order']}']")).to_contain_text("已确认", timeout=3000)
        expect(page.locator("#timeline li[data-event='order.acknowledged']")).to_have_count(2)
        expect(acked).to_have_text("2", timeout=3000)

        # Phone-sized screenshots of the command center too.
        page.set_viewport_size(PHONE)
        page.wait_for_timeout(300)
        _shot(page, "live-phone")

        # Raise the level (keyboard, typed confirmation).
        page.set_viewport_size(DESKTOP)
        page.locator("#level-select").focus()
        page.locator("#level-select").select_option("II")
        page.locator("#level-button").focus()
        page.keyboard.press("Enter")
        _confirm_by_keyboard(page, name)
        expect(page.locator("#live-title")).to_contain_text("Ⅱ级")
        expect(page.locator("#timeline li[data-event='activation.level_changed']")).to_have_count(1, timeout=3000)

        # Switch back (战转平), same deliberate confirmation.
        page.locator("#end-button").focus()
        page.keyboard.press("Enter")
        _confirm_by_keyboard(page, name)
        expect(page.locator("#live-title .badge.ended")).to_have_text("已结束")
        expect(page.locator("#timeline li[data-event='activation.ended']")).to_have_count(1, timeout=3000)
        expect(page.locator("#end-button")).to_be_disabled()
        _shot(page, "live-ended-desktop")
        phone.goto(base + first["path"])  # the switch-back ends the personal links too
        expect(phone.locator("#error")).to_contain_text("过期")
        browser.close()
    assert outside == [], f"the pages tried to reach the outside: {outside}"


def test_overlap_scope_english_and_phone_sizes(server):
    """A 409 shows the running activation and opens it; English everywhere; every screen at phone size."""
    from playwright.sync_api import expect, sync_playwright

    base, codes, _ = server
    admin = httpx.post(f"{base}/api/v1/auth/token", data={"username": "admin", "password": DEMO_PASSWORD}).json()
    r = httpx.post(f"{base}/api/v1/activations", headers={"Authorization": f"Bearer {admin['access_token']}"},
                   json={"scope": codes["community_b"], "hazard": "flood", "level": "IV", "drill": True}, timeout=60)
    assert r.status_code == 201, r.text
    running = r.json()["id"]
    outside: list[str] = []
    with sync_playwright() as p:
        browser = _browser(p)
        ctx = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        _guard(ctx, base, outside)
        page = ctx.new_page()
        _login(page, base, "street")
        expect(page.locator("#unit-title")).to_contain_text(codes["street"])
        _shot(page, "readiness-phone")

        # The whole street overlaps the running drill in community B: 409, shown, and it opens.
        page.locator("#tabs [data-screen=activate]").click()
        page.locator("#plan-choices input[value=flood]").check()
        page.locator("#drill-check").check()
        expect(page.locator("#preview .stat").first).to_be_visible()
        _shot(page, "activate-phone")
        street = page.locator(f".node[data-code='{codes['street']}']").inner_text().split()[0]
        page.locator("#one-key").click()
        page.fill("#confirm-input", street)
        page.locator("#confirm-ok").click()
        error = page.locator("#confirm-error")
        expect(error).to_contain_text("重叠")
        expect(error).to_contain_text(f"#{running}")
        expect(error.locator(".badge.drill")).to_be_visible()
        _shot(page, "conflict-phone")
        page.locator("#open-running").click()
        expect(page).to_have_url(re.compile(rf"#/live/{running}$"))
        expect(page.locator("#live-title .badge.drill")).to_be_visible()
        expect(page.locator("#live-conn")).to_contain_text("实时")
        page.wait_for_timeout(300)
        _shot(page, "live-phone-running")

        # English by the switch: labels, statuses, the timeline.
        page.locator("#lang").click()
        expect(page.locator("h1")).to_have_text("Emergency switch command")
        expect(page.locator("#live-title .badge.drill")).to_have_text("DRILL")
        expect(page.locator("[data-kpi=acknowledged] span")).to_have_text("Acknowledged")
        expect(page.locator("#timeline li").first).not_to_contain_text("活")
        page.set_viewport_size(DESKTOP)
        page.wait_for_timeout(300)
        _shot(page, "live-desktop-en")
        page.locator("#tabs [data-screen=activate]").click()
        expect(page.locator("#one-key")).to_have_text("Activate")
        _shot(page, "activate-desktop-en")
        # Nothing on the page is left in Chinese except names (units, people) from the roster.
        browser.close()
    assert outside == [], f"the pages tried to reach the outside: {outside}"
