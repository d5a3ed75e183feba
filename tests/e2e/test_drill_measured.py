"""A live drill's measured answers beside the simulation's prediction (the CLI's --compare-activation path)."""

from __future__ import annotations

import io
import json

import pytest

from mobilize.errors import InvalidInput
from scenarios.cli import run_drill
from scenarios.live import load_live_world
from scenarios.measured import measure_activation, scenario_for
from scenarios.model import load_scenario, shipped
from tests.e2e.test_dispatch import links
from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


async def test_measured_answers_are_read_and_set_beside_the_prediction(client, demo, settings, sessionmaker, tmp_path):
    planner = await login(client, "planner")
    r = await client.post("/api/v1/activations", headers={**planner, "Idempotency-Key": "measured-0001"},
                          json={"scope": demo["community_a"], "hazard": "flood", "level": "III", "drill": True})
    assert r.status_code == 201, r.text
    act = r.json()
    tokens = list((await links(settings, act["id"])).values())
    for i, token in enumerate(tokens[:5]):  # three acknowledge, one of them arrives; two decline
        body = {"action": "decline", "reason": "ill"} if i >= 3 else {"action": "acknowledge"}
        r = await client.post(f"/api/v1/m/{token}/actions", json=body, headers={"Idempotency-Key": f"answer-{i:04}"})
        assert r.status_code == 200, r.text
    r = await client.post(f"/api/v1/m/{tokens[0]}/actions", json={"action": "arrive"}, headers={"Idempotency-Key": "arrive-0"})
    assert r.status_code == 200
    async with sessionmaker() as session:
        measured = await measure_activation(session, act["id"], timezone=settings.timezone)
        scenario = scenario_for(load_scenario(shipped()["street_flood"]), measured)
        await load_live_world(session, scenario)
    assert measured["scope"] == demo["community_a"] and measured["slots"] == act["summary"]["slots"]
    out = io.StringIO()
    report = tmp_path / "measured.html"
    result = run_drill(shipped()["street_flood"], 3, 5, report, as_json=True, progress=False, processes=1, out=out,
                       measured=measured)
    m = result["measured"]
    first = len(tokens)  # orders notified at the key press (backups after the declines come on top)
    assert m["notified"] >= first and m["notified"] == len(measured["orders"])
    assert m["answer_rate"] == pytest.approx(5 / m["notified"])
    assert m["decline_rate"] == pytest.approx(2 / m["notified"])
    assert m["curve"]["confirmed"][-1] == 3 and m["curve"]["arrived"][-1] == 1
    assert result["scenario"]["scope"] == demo["community_a"] and result["scenario"]["injects"] == []
    html = report.read_text(encoding="utf-8")
    assert "实测与预测" in html and "Measured vs predicted" in html
    assert json.loads(out.getvalue())["runs"] == 3


async def test_only_a_drill_activation_is_compared(client, demo, sessionmaker, tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILIZE_DRILL_DIR", str(tmp_path / "drills"))
    admin = await login(client, "admin")
    r = await client.post("/api/v1/activations", headers={**admin, "Idempotency-Key": "measured-real-1"},
                          json={"scope": demo["community_b"], "hazard": "flood", "level": "III"})
    assert r.status_code == 201
    async with sessionmaker() as session:
        with pytest.raises(InvalidInput) as err:
            await measure_activation(session, r.json()["id"])
    assert err.value.problems[0].field == "activation_id"
    r = await client.post("/api/v1/drills/jobs", headers={**admin, "Idempotency-Key": "measured-real-2"},
                          json={"scenario": "street_flood", "runs": 2, "activation_id": r.json()["id"]})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "activation_id"
