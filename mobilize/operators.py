"""Operators: create them with a role scoped to a subtree, and log them in."""

from __future__ import annotations

from functools import cache

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from mobilize import audit
from mobilize.access import ROLE_LEVEL, ROLE_ZH, Role
from mobilize.errors import Conflict, InvalidInput, Problem, Unauthorized
from mobilize.models import Operator
from mobilize.security import hash_password, verify_password
from rosters.models import OrgUnit

__all__ = ["OperatorCreate", "OperatorRead", "create_operator", "authenticate", "operator_read"]


class OperatorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    username: str = Field(min_length=2, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$")
    password: str = Field(min_length=8, max_length=128)
    role: Role
    scope_code: str | None = Field(default=None, description="单位编码 the unit the role covers (not for admin)")
    display_name: str | None = Field(default=None, max_length=64)


class OperatorRead(BaseModel):
    id: int
    username: str
    display_name: str
    role: Role
    role_zh: str
    scope_code: str | None
    scope_name: str | None


async def operator_read(session: AsyncSession, op: Operator) -> OperatorRead:
    unit = await session.get(OrgUnit, op.scope_unit_id) if op.scope_unit_id else None
    role = Role(op.role)
    return OperatorRead(id=op.id, username=op.username, display_name=op.display_name, role=role,
                        role_zh=ROLE_ZH[role], scope_code=unit.code if unit else None,
                        scope_name=unit.name if unit else None)


async def create_operator(session: AsyncSession, data: OperatorCreate, *, actor: str) -> OperatorRead:
    """Return the new operator; the scope must exist and sit at the level the role commands."""
    if (await session.execute(select(Operator.id).where(Operator.username == data.username))).first():
        raise Conflict("用户名已存在", f"Username {data.username} is taken",
                       [Problem("用户名已被使用", "username already in use", field="username", value=data.username)])
    scope_id = None
    if data.role is Role.ADMIN:
        if data.scope_code:
            raise InvalidInput("管理员不限管辖范围", "An admin has no scope",
                               [Problem("管理员不能指定管辖单位", "an admin cannot have a scope", field="scope_code")])
    else:
        if not data.scope_code:
            raise InvalidInput("请指定管辖单位", "A scope is required",
                               [Problem("此角色须指定管辖单位编码", "this role needs a scope unit code", field="scope_code")])
        unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == data.scope_code))).scalar_one_or_none()
        if unit is None:
            raise InvalidInput("管辖单位不存在", "Unknown scope unit",
                               [Problem(f"单位编码 {data.scope_code} 不存在", f"no unit with code {data.scope_code}",
                                        field="scope_code", value=data.scope_code)])
        wanted = ROLE_LEVEL.get(data.role)
        if wanted and unit.level != wanted:
            raise InvalidInput("管辖单位层级与角色不符", "The scope does not match the role",
                               [Problem(f"{ROLE_ZH[data.role]}须管辖一个{wanted}级单位，{unit.code} 是 {unit.level}",
                                        f"{data.role.value} must be scoped to a {wanted}; {unit.code} is a {unit.level}",
                                        field="scope_code", value=data.scope_code)])
        scope_id = unit.id
    op = Operator(username=data.username, display_name=data.display_name or data.username,
                  password_hash=await run_in_threadpool(hash_password, data.password), role=data.role.value,
                  scope_unit_id=scope_id, is_active=True)
    session.add(op)
    await session.flush()
    await audit.record(session, actor=actor, action="operator.create", target=f"operator:{op.id}",
                       detail={"role": data.role.value, "scope": data.scope_code})
    return await operator_read(session, op)


async def authenticate(session: AsyncSession, username: str, password: str) -> Operator:
    """Return the active operator with these credentials; 401 otherwise (same answer for both failures)."""
    op = (await session.execute(select(Operator).where(Operator.username == username))).scalar_one_or_none()
    ok = await run_in_threadpool(verify_password, password, op.password_hash if op else _dummy_hash())
    if op is None or not ok or not op.is_active:
        raise Unauthorized("用户名或密码错误", "Wrong username or password")
    return op


@cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown usernames: equal work whether the user exists or not."""
    return hash_password("not-a-real-password")

