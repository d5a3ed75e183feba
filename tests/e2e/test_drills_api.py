"""Drill jobs over HTTP: shipped scenarios, a checked upload, a job that runs in the background to its report."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")

SMALL = """\
name: 小演练 small drill
roster: {demo: small, seed: 1}
scope: '330102001001'
hazard: flood
level: III
start: 2026-11-21 09:00
timeline:
  - {at: 60, end: true}
"""


@pytest.fixture(autouse=True)
def drill_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MOBILIZE_DRILL_DIR", str(tmp_path / "drills"))
    monkeypatch.setenv("MOBILIZE_DRILL_PROCESSES", "1")
    return tmp_path / "drills"


async def wait_for(client, headers, job_id, states=("done", "failed", "cancelled", "interrupted"), timeout=120):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        job = (await client.get(f"/api/v1/drills/jobs/{job_id}", headers=headers)).json()
        seen.append((job["status"], job["done"]))
        if job["status"] in states:
            return job, seen
        await asyncio.sleep(0.2)
    raise AssertionError(f"job stuck: {seen[-5:]}")


async def test_shipped_scenarios_are_listed(client):
    planner = await login(client, "planner")
    r = await client.get("/api/v1/drills/scenarios", headers=planner)
    assert r.status_code == 200
    names = {s["name"] for s in r.json()}
    assert {"street_flood", "city_typhoon", "community_epidemic"} <= names
    assert (await client.get("/api/v1/drills/scenarios")).status_code == 401
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert {"/api/v1/drills/scenarios", "/api/v1/drills/jobs", "/api/v1/drills/jobs/{job_id}",
            "/api/v1/drills/jobs/{job_id}/cancel", "/api/v1/drills/jobs/{job_id}/report"} <= set(paths)


async def test_a_job_runs_in_the_background_to_its_report_and_a_retry_returns_it(client, drill_dir):
    planner = await login(client, "planner")
    body = {"yaml": SMALL, "runs": 4, "seed": 7, "compare": False}
    r = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0001"}, json=body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and job["runs"] == 4
    again = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0001"}, json=body)
    assert again.status_code == 200 and again.json()["id"] == job["id"]
    other = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0001"},
                              json={**body, "runs": 5})
    assert other.status_code == 409
    done, seen = await wait_for(client, planner, job["id"])
    assert done["status"] == "done", done
    assert done["done"] == done["total"] == 4 and done["has_report"]
    assert 0 < done["summary"]["fill_rate"] <= 1
    report = await client.get(f"/api/v1/drills/jobs/{job['id']}/report", headers=planner)
    assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
    assert "演练报告" in report.text and "<script" not in report.text
    assert len([p for p in drill_dir.iterdir() if p.name != "keys"]) == 1  # the retry made no second job
    # others do not see it; the admin does
    street = await login(client, "street")
    assert (await client.get(f"/api/v1/drills/jobs/{job['id']}", headers=street)).status_code == 404
    assert (await client.get(f"/api/v1/drills/jobs/{job['id']}/report", headers=street)).status_code == 404
    assert [j["id"] for j in (await client.get("/api/v1/drills/jobs", headers=street)).json()] == []
    admin = await login(client, "admin")
    assert (await client.get(f"/api/v1/drills/jobs/{job['id']}", headers=admin)).json()["status"] == "done"
    assert (await client.post(f"/api/v1/drills/jobs/{job['id']}/cancel", headers=planner)).status_code == 409


async def test_a_bad_scenario_names_line_and_field_and_starts_nothing(client, drill_dir):
    planner = await login(client, "planner")
    bad = SMALL.replace("hazard: flood", "hazard: meteor").replace("{at: 60, end: true}", "{at: -5, end: true}")
    r = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0002"},
                          json={"yaml": bad, "runs": 3})
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["message"] and err["message_en"]
    fields = {(p.get("field"), p.get("row")) for p in err["problems"]}
    assert ("hazard", 4) in fields, fields
    r = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0003"},
                          json={"scenario": "no_such", "runs": 3})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "scenario"
    r = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0004"},
                          json={"scenario": "street_flood", "runs": 0})
    assert r.status_code == 422
    r = await client.post("/api/v1/drills/jobs", headers=planner, json={"scenario": "street_flood"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "Idempotency-Key"
    cmd_a = await login(client, "cmd_a")
    r = await client.post("/api/v1/drills/jobs", headers={**cmd_a, "Idempotency-Key": "drill-key-0006"},
                          json={"scenario": "street_flood", "runs": 3})
    assert r.status_code == 403 and r.json()["error"]["message_en"]
    assert (await client.get("/api/v1/drills/jobs", headers=planner)).json() == []


async def test_a_running_job_is_cancelled_with_its_workers(client, drill_dir):
    import json
    import os

    planner = await login(client, "planner")
    r = await client.post("/api/v1/drills/jobs", headers={**planner, "Idempotency-Key": "drill-key-0005"},
                          json={"scenario": "street_flood", "runs": 400})
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    await wait_for(client, planner, job_id, states=("running",))
    r = await client.post(f"/api/v1/drills/jobs/{job_id}/cancel", headers=planner)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    runner = json.loads((drill_dir / job_id / "job.json").read_text())["runner"]["pid"]
    for _ in range(50):
        try:
            os.kill(runner, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the runner still runs")
    job = (await client.get(f"/api/v1/drills/jobs/{job_id}", headers=planner)).json()
    assert job["status"] == "cancelled" and not job["has_report"]
    assert (await client.get(f"/api/v1/drills/jobs/{job_id}/report", headers=planner)).status_code == 409
