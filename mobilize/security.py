"""Operator log-in: argon2 password hashes and short-lived signed tokens (JWT, HS256)."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import jwt
from pwdlib import PasswordHash
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal, Role
from mobilize.errors import Unauthorized
from mobilize.models import InstanceMeta, Operator
from rosters.models import OrgUnit

__all__ = [
    "hash_password",
    "verify_password",
    "issue_token",
    "read_token",
    "load_secret",
    "principal_for",
]

_hasher = PasswordHash.recommended()
_ALGORITHM = "HS256"
_SECRET_KEY = "token_secret"


def hash_password(password: str) -> str:
    """Return the argon2 hash of ``password``."""
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> bool:
    """Return whether ``password`` matches ``password_hash``."""
    try:
        return _hasher.verify(password, password_hash)
    except Exception:  # a malformed stored hash never logs anyone in
        return False


def issue_token(operator_id: int, *, secret: str, minutes: int, now: datetime | None = None) -> str:
    """Return a signed token for ``operator_id`` that expires after ``minutes``."""
    now = now or datetime.now(UTC)
    claims = {"sub": str(operator_id), "iat": now, "exp": now + timedelta(minutes=minutes), "typ": "operator"}
    return jwt.encode(claims, secret, algorithm=_ALGORITHM)


def read_token(token: str, *, secret: str) -> int:
    """Return the operator id a valid token names; raise :class:`Unauthorized` otherwise."""
    try:
        claims = jwt.decode(token, secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("登录已过期，请重新登录", "Your session has expired; log in again") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("登录凭证无效", "Invalid credentials") from exc
    if claims.get("typ") != "operator":
        raise Unauthorized("登录凭证无效", "Invalid credentials")
    return int(claims["sub"])


async def load_secret(session: AsyncSession, configured: str | None) -> str:
    """Return the token key: the configured one, else one kept in the database (made on first use)."""
    if configured:
        return configured
    row = await session.get(InstanceMeta, _SECRET_KEY)
    if row is None:
        session.add(InstanceMeta(key=_SECRET_KEY, value=secrets.token_urlsafe(48)))
        try:
            await session.commit()
        except Exception:  # another instance made it first
            await session.rollback()
        row = await session.get(InstanceMeta, _SECRET_KEY)
    assert row is not None
    return row.value


async def principal_for(session: AsyncSession, operator_id: int) -> Principal:
    """Return the :class:`Principal` of an active operator; raise :class:`Unauthorized` otherwise."""
    row = (
        await session.execute(
            select(Operator, OrgUnit.path)
            .outerjoin(OrgUnit, OrgUnit.id == Operator.scope_unit_id)
            .where(Operator.id == operator_id)
        )
    ).first()
    if row is None or not row[0].is_active:
        raise Unauthorized("账号不存在或已停用", "The account does not exist or is disabled")
    op, path = row
    return Principal(op.id, op.username, Role(op.role), op.scope_unit_id, path)
