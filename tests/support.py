"""Helpers shared by tests: seeding the demo city and logging in."""

from __future__ import annotations

import httpx

from mobilize.db import create_engine, create_sessionmaker, session_scope
from mobilize.settings import Settings

DEMO_PASSWORD = "demo-password-1"


async def seed_demo(settings: Settings, size: str = "small", seed: int = 1) -> dict[str, str]:
    """Load the demo city and its operators; return the codes tests need (street, two communities)."""
    from datetime import date

    from mobilize.operators import OperatorCreate, create_operator
    from rosters.demo import generate_city
    from rosters.loader import load_roster
    from rosters.vocabulary import load_workgroups

    roster = generate_city(size, seed, today=date(2026, 11, 21))
    engine = create_engine(settings.database_url)
    maker = create_sessionmaker(engine)
    async with session_scope(maker) as session:
        await load_roster(session, roster, workgroups=load_workgroups())
    city = next(u.code for u in roster.units if u.level == "city")
    street = next(u.code for u in roster.units if u.level == "street")
    communities = [u.code for u in roster.units if u.level == "community"]
    codes = {"city": city, "street": street, "community_a": communities[0], "community_b": communities[1]}
    async with session_scope(maker) as session:
        for username, role, scope in [
            ("admin", "admin", None),
            ("street", "street_commander", street),
            ("cmd_a", "community_commander", codes["community_a"]),
            ("cmd_b", "community_commander", codes["community_b"]),
            ("planner", "drill_planner", city),
        ]:
            await create_operator(session, OperatorCreate(username=username, password=DEMO_PASSWORD, role=role,
                                                          scope_code=scope), actor="test")
    await engine.dispose()
    return codes


async def login(client: httpx.AsyncClient, username: str, password: str = DEMO_PASSWORD) -> dict[str, str]:
    """Return the Authorization header of a logged-in operator."""
    r = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
