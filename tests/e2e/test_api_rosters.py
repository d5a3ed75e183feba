"""The roster API as operators meet it: log-in, scope, masking, filters, writes and their errors."""

from __future__ import annotations

import pytest

from tests.support import login

pytestmark = pytest.mark.usefixtures("demo")


async def test_login_wrong_password_is_a_bilingual_401(client):
    r = await client.post("/api/v1/auth/token", data={"username": "admin", "password": "wrong-password"})
    assert r.status_code == 401
    body = r.json()["error"]
    assert body["message"] == "用户名或密码错误" and "Wrong username or password" in body["message_en"]


async def test_requests_without_token_are_refused(client):
    r = await client.get("/api/v1/people")
    assert r.status_code == 401
    r = await client.get("/api/v1/people", headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401 and r.json()["error"]["message_en"] == "Invalid credentials"


async def test_openapi_documents_the_v1_api(client):
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/people" in schema["paths"] and "/api/v1/imports" in schema["paths"]


async def test_community_commander_sees_only_own_community(client, demo):
    a = await login(client, "cmd_a")
    admin = await login(client, "admin")
    everyone = (await client.get("/api/v1/people", headers=admin, params={"page_size": 1})).json()["total"]
    in_a = (await client.get("/api/v1/people", headers=admin, params={"unit": demo["community_a"], "page_size": 1})).json()["total"]
    mine = (await client.get("/api/v1/people", headers=a, params={"page_size": 500})).json()
    assert 0 < mine["total"] == in_a < everyone
    assert {p["community_code"] for p in mine["items"]} == {demo["community_a"]}


async def test_other_community_is_not_found_through_every_endpoint(client, demo):
    a = await login(client, "cmd_a")
    admin = await login(client, "admin")
    b = demo["community_b"]
    person_b = (await client.get("/api/v1/people", headers=admin, params={"unit": b})).json()["items"][0]
    team_b = (await client.get("/api/v1/teams", headers=admin, params={"unit": b})).json()["items"][0]
    checks = [
        ("GET", f"/api/v1/units/{b}", None),
        ("PATCH", f"/api/v1/units/{b}", {"name": "改名"}),
        ("GET", f"/api/v1/units/{b}/readiness", None),
        ("GET", f"/api/v1/people/{person_b['id']}", None),
        ("PATCH", f"/api/v1/people/{person_b['id']}", {"name": "改名"}),
        ("GET", f"/api/v1/teams/{team_b['code']}", None),
        ("PATCH", f"/api/v1/teams/{team_b['code']}", {"name": "改名"}),
        ("GET", f"/api/v1/people?unit={b}", None),
        ("GET", f"/api/v1/teams?unit={b}", None),
        ("GET", f"/api/v1/units?parent={b}", None),
        ("GET", f"/api/v1/exports?unit={b}", None),
    ]
    for method, url, body in checks:
        r = await client.request(method, url, headers=a, json=body)
        assert r.status_code == 404, (method, url, r.status_code, r.text)
    # and nothing changed
    again = (await client.get(f"/api/v1/people/{person_b['id']}", headers=admin)).json()
    assert again["name"] == person_b["name"]
    r = await client.post("/api/v1/people", headers=a, json={
        "phone": "13900001111", "name": "越权", "kind": "volunteer", "community_code": b,
        "peacetime_group": "publicity", "wartime_group": "care"})
    assert r.status_code == 404


async def test_units_list_is_the_subtree(client, demo):
    a = await login(client, "cmd_a")
    units = (await client.get("/api/v1/units", headers=a, params={"page_size": 500})).json()
    codes = {u["code"] for u in units["items"]}
    assert demo["community_a"] in codes and demo["community_b"] not in codes
    assert demo["street"] not in codes
    assert all(u["code"] == demo["community_a"] or u["parent_code"] == demo["community_a"] for u in units["items"])


async def test_phones_and_names_are_masked_for_roles_that_do_not_need_them(client, demo):
    planner = await login(client, "planner")
    cmd = await login(client, "cmd_a")
    seen_by_planner = (await client.get("/api/v1/people", headers=planner, params={"unit": demo["community_a"]})).json()["items"][0]
    seen_by_cmd = (await client.get(f"/api/v1/people/{seen_by_planner['id']}", headers=cmd)).json()
    assert seen_by_cmd["phone"].isdigit() and len(seen_by_cmd["phone"]) == 11
    assert seen_by_planner["phone"] == seen_by_cmd["phone"][:3] + "****" + seen_by_cmd["phone"][-4:]
    assert seen_by_planner["name"].endswith("*") and seen_by_planner["name"][0] == seen_by_cmd["name"][0]
    assert seen_by_planner["address"] is None and seen_by_cmd["address"]


async def test_drill_planner_cannot_write_or_export(client, demo):
    planner = await login(client, "planner")
    r = await client.post("/api/v1/people", headers=planner, json={
        "phone": "13900002222", "name": "测试", "kind": "volunteer", "community_code": demo["community_a"],
        "peacetime_group": "publicity", "wartime_group": "care"})
    assert r.status_code == 403 and r.json()["error"]["message"] == "当前角色不能修改花名册"
    r = await client.get("/api/v1/exports", headers=planner)
    assert r.status_code == 403


async def test_create_and_update_person_normalizes_and_resolves_words(client, demo):
    a = await login(client, "cmd_a")
    r = await client.post("/api/v1/people", headers=a, json={
        "phone": "+86 139-0000-3333", "name": "新人", "kind": "volunteer", "community_code": demo["community_a"],
        "peacetime_group": "宣传动员组", "wartime_group": "关爱服务", "skills": ["驾驶证", "medical"],
        "party_member": True})
    assert r.status_code == 201, r.text
    person = r.json()
    assert person["phone"] == "13900003333"
    assert person["skills"] == ["driving", "medical"]
    assert (person["peacetime_group"], person["wartime_group"]) == ("publicity", "care")
    r = await client.patch(f"/api/v1/people/{person['id']}", headers=a, json={"status": "on_leave", "leave_until": "2099-01-01"})
    assert r.status_code == 200 and r.json()["status"] == "on_leave" and r.json()["available_now"] is False
    r = await client.post("/api/v1/people", headers=a, json={
        "phone": "13900003333", "name": "重复", "kind": "volunteer", "community_code": demo["community_a"],
        "peacetime_group": "publicity", "wartime_group": "care"})
    assert r.status_code == 409


async def test_fields_a_role_may_not_set_are_rejected_not_ignored(client, demo):
    a = await login(client, "cmd_a")
    person = (await client.get("/api/v1/people", headers=a)).json()["items"][0]
    r = await client.patch(f"/api/v1/people/{person['id']}", headers=a, json={"status": "deployed"})
    assert r.status_code == 422
    assert r.json()["error"]["problems"][0]["field"] == "status"
    r = await client.patch(f"/api/v1/people/{person['id']}", headers=a, json={"id": 1, "created_at": "2020-01-01"})
    assert r.status_code == 422
    fields = {p["field"] for p in r.json()["error"]["problems"]}
    assert fields == {"id", "created_at"}
    assert all(p["reason_zh"] == "不允许设置此字段" for p in r.json()["error"]["problems"])
    after = (await client.get(f"/api/v1/people/{person['id']}", headers=a)).json()
    assert after["status"] == person["status"]


async def test_bad_values_name_the_field_in_both_languages(client, demo):
    a = await login(client, "cmd_a")
    r = await client.post("/api/v1/people", headers=a, json={
        "phone": "12345", "name": "", "kind": "astronaut", "community_code": demo["community_a"],
        "peacetime_group": "publicity", "wartime_group": "no-such-group", "lat": 120})
    assert r.status_code == 422
    problems = {p["field"]: p for p in r.json()["error"]["problems"]}
    assert {"phone", "name", "kind", "lat"} <= set(problems)
    assert "11" in problems["phone"]["reason_zh"] and problems["phone"]["reason_en"]
    r = await client.post("/api/v1/people", headers=a, json={
        "phone": "13900004444", "name": "某人", "kind": "volunteer", "community_code": demo["community_a"],
        "peacetime_group": "publicity", "wartime_group": "no-such-group", "skills": ["潜水艇"]})
    assert r.status_code == 422
    problems = {p["field"]: p for p in r.json()["error"]["problems"]}
    assert problems["skills[0]"]["reason_zh"] == "未知技能「潜水艇」"
    assert "wartime_group" in problems


async def test_filters_and_pagination(client, demo):
    admin = await login(client, "admin")
    all_ = (await client.get("/api/v1/people", headers=admin, params={"page_size": 1})).json()["total"]
    party = (await client.get("/api/v1/people", headers=admin, params={"party": True, "page_size": 500})).json()
    assert 0 < party["total"] < all_ and all(p["party_member"] for p in party["items"])
    medics = (await client.get("/api/v1/people", headers=admin, params={"skill": "medical", "page_size": 500})).json()
    assert medics["total"] > 0 and all("medical" in p["skills"] for p in medics["items"])
    squad = (await client.get("/api/v1/people", headers=admin, params={"kind": "squad_member", "page_size": 500})).json()
    assert all(p["kind"] == "squad_member" and p["party_member"] for p in squad["items"])
    group = (await client.get("/api/v1/people", headers=admin, params={"group": "medical", "page_size": 500})).json()
    assert all("medical" in (p["wartime_group"], p["peacetime_group"]) for p in group["items"])
    unavailable = (await client.get("/api/v1/people", headers=admin, params={"available": False, "page_size": 500})).json()
    assert unavailable["total"] > 0 and not any(p["available_now"] for p in unavailable["items"])
    pages = [(await client.get("/api/v1/people", headers=admin, params={"page": n, "page_size": 100})).json()
             for n in (1, 2)]
    ids = [p["id"] for page in pages for p in page["items"]]
    assert len(ids) == len(set(ids)) == 200
    r = await client.get("/api/v1/people", headers=admin, params={"page_size": 100000})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "query.page_size"


async def test_readiness_adds_up(client, demo):
    street = await login(client, "street")
    r = (await client.get(f"/api/v1/units/{demo['street']}/readiness", headers=street)).json()
    assert r["communities"] >= 8 and r["people"] >= 1100
    assert len(r["wartime_groups"]) == 7 and len(r["peacetime_groups"]) == 4
    assert sum(g["people"] for g in r["wartime_groups"]) == r["people"]
    assert r["available"] + r["unavailable"] + r["deployed"] == r["people"]
    assert r["groups_without_leader"] == 0
    assert r["skills_available"]["medical"] > 0
    assert r["teams"]["commando_squad"] == r["communities"]


async def test_teams_leader_must_be_in_roster_and_becomes_member(client, demo):
    a = await login(client, "cmd_a")
    person = (await client.get("/api/v1/people", headers=a, params={"kind": "volunteer"})).json()["items"][0]
    full = (await client.get(f"/api/v1/people/{person['id']}", headers=a)).json()
    r = await client.post("/api/v1/teams", headers=a, json={
        "code": f"{demo['community_a']}-ZY9", "name": "新志愿队", "kind": "volunteer_team",
        "community_code": demo["community_a"], "leader_phone": full["phone"]})
    assert r.status_code == 201, r.text
    team = r.json()
    assert team["leader_id"] == person["id"] and team["member_count"] == 1
    r = await client.post("/api/v1/teams", headers=a, json={
        "code": f"{demo['community_a']}-ZY8", "name": "无队长", "kind": "volunteer_team",
        "community_code": demo["community_a"], "leader_phone": "13700000000"})
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "leader_phone"


async def test_operators_are_admin_only_and_role_matches_scope(client, demo):
    a = await login(client, "cmd_a")
    admin = await login(client, "admin")
    body = {"username": "new_cmd", "password": "long-enough-pw", "role": "community_commander", "scope_code": demo["street"]}
    assert (await client.post("/api/v1/operators", headers=a, json=body)).status_code == 403
    r = await client.post("/api/v1/operators", headers=admin, json=body)
    assert r.status_code == 422 and r.json()["error"]["problems"][0]["field"] == "scope_code"
    body["scope_code"] = demo["community_b"]
    r = await client.post("/api/v1/operators", headers=admin, json=body)
    assert r.status_code == 201 and r.json()["scope_code"] == demo["community_b"]
    me = (await client.get("/api/v1/auth/me", headers=await login(client, "new_cmd", "long-enough-pw"))).json()
    assert me["role"] == "community_commander"
