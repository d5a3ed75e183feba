"""Fixtures for realtime's integration tests: databases (SQLite, PostgreSQL), hubs (memory, Redis), a test app.

Not a conftest.py (the lead owns that): test modules import what they use from here. PostgreSQL
tests get their own schema ``rt_test_<random>`` (dropped afterwards); Redis tests use channel names
with a random prefix. A server that cannot be reached skips its tests with the reason shown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI, Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from realtime import RealtimeEndpoint, append_many, bind_hub, models
from realtime.models import NewEvent

POSTGRES_URL = os.environ.get("MOBILIZE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
# Pub/sub channels are global to a Redis server: each test process (xdist worker) keeps to its own prefix.
_REDIS = os.environ.get("MOBILIZE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
REDIS_URL = _REDIS + ("&" if "?" in _REDIS else "?") + f"prefix=pytest-{secrets.token_hex(4)}"
REQUIRE_SERVICES = os.environ.get("CI") == "true" or os.environ.get("MOBILIZE_REQUIRE_SERVICES") == "1"


def _unreachable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; it is required here (CI)")
    pytest.skip(message)


def reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1.0):
            return True
    except OSError:
        return False


def require_postgres() -> None:
    if not reachable(POSTGRES_URL, 5432):
        _unreachable(f"PostgreSQL unreachable at {POSTGRES_URL} (set MOBILIZE_TEST_POSTGRES_URL)")


def require_redis() -> None:
    if not reachable(REDIS_URL, 6379):
        _unreachable(f"Redis unreachable at {REDIS_URL} (set MOBILIZE_TEST_REDIS_URL)")


DATABASES = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
HUBS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.redis),
]


@dataclass
class Database:
    kind: str
    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    schema: str | None = None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def engine_for(kind: str, url: str, schema: str | None) -> AsyncEngine:
    """Return an engine on ``url`` whose unqualified table names resolve in ``schema`` (PostgreSQL)."""
    if kind == "postgres":
        return create_async_engine(url, connect_args={"server_settings": {"search_path": schema or "public"}})
    engine = create_async_engine(url, connect_args={"timeout": 30})
    event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


@contextlib.asynccontextmanager
async def make_database(kind: str, tmp_path: Any) -> AsyncIterator[Database]:
    """Yield a fresh event-log database of ``kind``, removed afterwards."""
    if kind == "postgres":
        require_postgres()
        schema = f"rt_test_{secrets.token_hex(4)}"
        admin = create_async_engine(POSTGRES_URL)
        async with admin.begin() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine = engine_for(kind, POSTGRES_URL, schema)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(models.metadata.create_all)
            yield Database(kind, POSTGRES_URL, engine, async_sessionmaker(engine, expire_on_commit=False), schema)
        finally:
            await engine.dispose()
            async with admin.begin() as connection:
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            await admin.dispose()
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/realtime-{secrets.token_hex(4)}.db"
        engine = engine_for(kind, url, None)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(models.metadata.create_all)
            yield Database(kind, url, engine, async_sessionmaker(engine, expire_on_commit=False))
        finally:
            await engine.dispose()


@pytest.fixture(params=DATABASES)
async def database(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Database]:
    async with make_database(request.param, tmp_path) as db:
        yield db


@pytest.fixture
async def sqlite_database(tmp_path: Any) -> AsyncIterator[Database]:
    async with make_database("sqlite", tmp_path) as db:
        yield db


@pytest.fixture(params=HUBS)
def hub_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        require_redis()
        return REDIS_URL
    return "memory://"


@pytest.fixture
def channel_prefix() -> str:
    """A prefix that keeps this test's channels apart from anyone else's on a shared Redis."""
    return f"rt-test-{secrets.token_hex(4)}"


async def wait_for(predicate: Any, timeout: float = 5.0, interval: float = 0.01) -> None:
    """Return once ``predicate()`` is true; fail the test after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


# --- a tiny app that mounts the endpoint -----------------------------------------------------------

ALLOWED_ORIGIN = "http://command.test"


def authenticate(token: str) -> dict[str, str] | None:
    """Tokens of the test app: ``good-<role>`` is a principal of that role, anything else is refused."""
    return {"role": token.removeprefix("good-")} if token.startswith("good-") else None


def authorize(principal: dict[str, str], channel: str) -> bool:
    return principal["role"] in {"commander", "redacted"} or channel.startswith("activation:")


def redact(principal: dict[str, str], message: dict[str, Any]) -> dict[str, Any] | None:
    if principal["role"] == "redacted" and "person" in message.get("body", {}):
        return {**message, "body": {k: v for k, v in message["body"].items() if k != "person"}}
    return message


def make_app(hub: Any, sessionmaker: Any, **options: Any) -> Any:
    """Return a FastAPI app with ``/ws`` (the endpoint) and ``POST /events`` (append events and commit)."""
    bind_hub(sessionmaker, hub)
    settings: dict[str, Any] = {
        "hub": hub,
        "sessionmaker": sessionmaker,
        "authenticate": authenticate,
        "authorize": authorize,
        "snapshot": lambda channel, principal: {"channel": channel, "role": principal["role"]},
        "filter": redact,
        "allowed_origins": {ALLOWED_ORIGIN},
    }
    settings.update(options)
    app = FastAPI()
    app.add_api_websocket_route("/ws", RealtimeEndpoint(**settings))

    @app.post("/events")
    async def post_events(request: Request) -> dict[str, Any]:
        data = await request.json()
        async with sessionmaker() as session:
            stored = await append_many(
                session,
                [NewEvent(data["stream"], data.get("type", "order.acknowledged"), body) for body in data["bodies"]],
            )
            await session.commit()
        return {"seqs": [e.seq for e in stored]}

    return app


@contextlib.asynccontextmanager
async def serve(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port in this event loop; yield ``host:port``."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, ws="websockets-sansio", ws_per_message_deflate=False,
        log_level="warning", lifespan="off",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await wait_for(lambda: server.started or task.done())
    if task.done():
        task.result()
    host, port = server.servers[0].sockets[0].getsockname()[:2]
    try:
        yield f"{host}:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(task, 5)
