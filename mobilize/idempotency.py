"""Idempotency keys for acting requests: the first answer is kept and any repeat gets it back unchanged."""

from __future__ import annotations

import hashlib
import json
from typing import Any


from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.models import IdempotencyRecord
from mobilize.db import insert_ignoring, utcnow
from mobilize.errors import Conflict, InvalidInput, Problem

__all__ = ["request_hash", "replay", "replay_many", "check_stored", "remember", "remember_many", "require_key"]


def request_hash(*parts: Any) -> str:
    """Return a digest of what a request asks for (so a key reused for something else is refused)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def require_key(key: str | None) -> str:
    """Return the request's idempotency key; 422 naming the header when it is missing or unusable."""
    if not key or not 8 <= len(key) <= 128:
        problem = Problem("每个操作请求须带 8–128 个字符的 Idempotency-Key 请求头",
                          "every acting request carries an Idempotency-Key header of 8–128 characters",
                          field="Idempotency-Key")
        if not key:
            raise InvalidInput("缺少幂等键", "An Idempotency-Key header is required", [problem])
        raise InvalidInput(f"幂等键长度须为 8–128 个字符（现为 {len(key)} 个）",
                           f"The Idempotency-Key must be 8–128 characters long (this one has {len(key)})", [problem])
    return key


async def replay(session: AsyncSession, scope: str, key: str, digest: str) -> tuple[int, dict] | None:
    """Return the stored (status, response) for this key, None if new; 409 if the key asked for something else."""
    row = await session.get(IdempotencyRecord, (scope, key))
    if row is None:
        return None
    return check_stored(row.request_hash, digest, row.status_code, row.response)


def check_stored(stored_digest: str, digest: str, status: int, response: dict) -> tuple[int, dict]:
    """Return the stored (status, response) of a key; 409 if the key was used for another request."""
    if stored_digest != digest:
        raise Conflict("幂等键已用于另一个请求", "This idempotency key was used for a different request",
                       [Problem("请为新的操作使用新的键", "use a new key for a new action", field="Idempotency-Key")])
    return status, response


async def replay_many(session: AsyncSession, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """Return (scope, key) -> (request hash, status, response) of those of ``pairs`` already answered."""
    if not pairs:
        return {}
    t = IdempotencyRecord.__table__
    rows = await (await session.connection()).execute(select(t.c.scope, t.c.key, t.c.request_hash, t.c.status_code, t.c.response)
                                 .where(tuple_(t.c.scope, t.c.key).in_(sorted(pairs))))
    return {(scope, key): (digest, status, response) for scope, key, digest, status, response in rows}


async def remember(session: AsyncSession, scope: str, key: str, digest: str, status: int, response: dict) -> None:
    """Keep the answer to this key (the first writer wins if two identical requests race)."""
    values = {"scope": scope, "key": key, "request_hash": digest, "status_code": status, "response": response,
              "created_at": utcnow()}
    stmt = insert_ignoring(session, IdempotencyRecord.__table__, ["scope", "key"]).values(**values)
    await session.execute(stmt)


async def remember_many(session: AsyncSession, rows: list[tuple[str, str, str, int, dict]]) -> None:
    """Keep many answers at once: rows of (scope, key, request hash, status, response)."""
    if not rows:
        return
    now = utcnow()
    stmt = insert_ignoring(session, IdempotencyRecord.__table__, ["scope", "key"])
    await (await session.connection()).execute(stmt, [{"scope": s, "key": k, "request_hash": d, "status_code": c, "response": r,
                                  "created_at": now} for s, k, d, c, r in rows])
