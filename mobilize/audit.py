"""The append-only audit log: who did what to which record, written in the caller's transaction."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.models import AuditEntry

__all__ = ["record", "record_many"]


async def record(session: AsyncSession, *, actor: str, action: str, target: str | None = None,
                 detail: dict[str, Any] | None = None) -> None:
    """Append one audit row (no personal data in ``detail``: ids, codes and counts)."""
    await session.execute(insert(AuditEntry).values(actor=actor, action=action, target=target, detail=detail or {}))


async def record_many(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Append many audit rows (each with ``actor``, ``action``, ``target``, ``detail``) in one statement."""
    if rows:
        await (await session.connection()).execute(insert(AuditEntry.__table__), [{**r, "detail": r.get("detail") or {}} for r in rows])
