"""All ``/api/v1`` routes: log-in and operators here, the rest from each package's router."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel
from sqlalchemy import select

from mobilize.deps import CommitRoute, PrincipalDep, SessionDep, SettingsDep
from mobilize.errors import Forbidden
from mobilize.models import Operator
from mobilize.operators import OperatorCreate, OperatorRead, authenticate, create_operator, operator_read
from mobilize.security import issue_token
from mobilize.activations.phone_routes import router as phone_router
from mobilize.activations.router import router as activations_router
from rosters.router import router as rosters_router
from scenarios.drill_api import router as drills_router

router = APIRouter(route_class=CommitRoute)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int
    operator: OperatorRead


@router.post("/auth/token", tags=["auth"], response_model=Token, summary="登录 Log in (OAuth2 password form)")
async def login(request: Request, form: Annotated[OAuth2PasswordRequestForm, Depends()], session: SessionDep,
                settings: SettingsDep):
    op = await authenticate(session, form.username, form.password)
    token = issue_token(op.id, secret=request.app.state.secret, minutes=settings.token_minutes)
    return Token(access_token=token, expires_in=settings.token_minutes * 60, operator=await operator_read(session, op))


@router.get("/auth/me", tags=["auth"], response_model=OperatorRead, summary="当前操作员 Who am I")
async def me(session: SessionDep, principal: PrincipalDep):
    op = await session.get(Operator, principal.operator_id)
    return await operator_read(session, op)


@router.get("/operators", tags=["auth"], response_model=list[OperatorRead], summary="操作员 List operators (admin)")
async def list_operators(session: SessionDep, principal: PrincipalDep):
    if not principal.is_admin:
        raise Forbidden("只有管理员可以管理操作员", "Only an admin manages operators")
    ops = (await session.execute(select(Operator).order_by(Operator.id))).scalars().all()
    return [await operator_read(session, op) for op in ops]


@router.post("/operators", tags=["auth"], status_code=201, response_model=OperatorRead,
             summary="新增操作员 Create an operator (admin)")
async def add_operator(data: OperatorCreate, session: SessionDep, principal: PrincipalDep):
    if not principal.is_admin:
        raise Forbidden("只有管理员可以管理操作员", "Only an admin manages operators")
    return await create_operator(session, data, actor=principal.actor)


router.include_router(phone_router)  # first: every phone of an activation presses here, matched in order
router.include_router(rosters_router)
router.include_router(activations_router)
router.include_router(drills_router)
