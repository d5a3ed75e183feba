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


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``mobilize serve`` in a subprocess on a free port of 127.0.0.1, for tests that need a real server."""

    def __init__(self, database_url: str, cwd, **env: str) -> None:
        import os
        import subprocess
        import sys
        import time

        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "MOBILIZE_DATABASE_URL": database_url, "MOBILIZE_LOG_LEVEL": "WARNING",
                   "MOBILIZE_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789", **env}
        self.proc = subprocess.Popen([sys.executable, "-m", "mobilize.cli", "serve", "--port", str(self.port)],
                                     env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=cwd)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.proc.kill()
        raise RuntimeError("server did not start: " + self.proc.stderr.read().decode(errors="replace")[-2000:])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
