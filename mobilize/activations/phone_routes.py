"""Phone routes of personal links (个人链接): the page's data, a person's buttons, a team leader's actions.

The hottest routes of an activation (every dispatched phone presses here), so they are matched
first (see :mod:`mobilize.router`) and the buttons take no per-request dependency: acknowledge,
en route and arrived go to the group-commit writer (:mod:`mobilize.activations.answers`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from mobilize import idempotency
from mobilize.activations import phone
from mobilize.db import begin_write, session_scope, utcnow
from mobilize.deps import CommitRoute, SessionDep, SettingsDep

__all__ = ["router"]

router = APIRouter(tags=["phone"], route_class=CommitRoute)


class PhoneAction(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: str = Field(description="acknowledge 确认 | decline 拒绝 | en_route 出发 | arrive 到岗")
    reason: str | None = Field(default=None, description="拒绝原因 decline reason: ill, away, family, other")
    note: str | None = Field(default=None, max_length=200)


class TeamAction(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: str = Field(description="acknowledge_all 全队确认 | arrival_headcount 报到岗人数 | shortage 报缺口")
    count: int | None = Field(default=None, ge=0, le=10000)
    note: str | None = Field(default=None, max_length=200)


_NO_LEAK = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


@router.get("/m/{token}", tags=["phone"], summary="个人链接：查看派单 What a personal link shows (GET never acts)")
async def phone_view(token: str, session: SessionDep, response: Response):
    response.headers.update(_NO_LEAK)
    return await phone.view(session, token, now=utcnow())


@router.post("/m/{token}/actions", tags=["phone"], summary="个人链接：确认、拒绝、出发、到岗 Act on one's order",
             description="回答为派单的新状态及可做的下一步（页面其余内容不变）。"
                         "The answer is the order's new state and the next allowed actions.")
async def phone_act(token: str, data: PhoneAction, request: Request,
                    idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    state = request.app.state  # no per-request dependencies: this is the hottest route of an activation
    if data.action in phone.GROUPED_ACTIONS:  # no session of its own: written with others (group commit)
        status, body = await state.answers.submit(token, data.action, key=idempotency.require_key(idempotency_key),
                                                  reason=data.reason, note=data.note, now=utcnow())
    else:
        async with session_scope(state.sessionmaker) as session:
            status, body = await phone.act(session, token, data.action, key=idempotency_key, reason=data.reason,
                                           note=data.note, now=utcnow(), local_now=state.settings.local_now(),
                                           plans=state.plans, notices=state.notices, gate=state.answers.gate)
    return JSONResponse(body, status_code=status, headers=_NO_LEAK)  # a plain dict: no response model to walk


@router.post("/m/{token}/team", tags=["phone"], summary="队长：全队确认、报到岗人数、报缺口 Team leader actions")
async def phone_team(token: str, data: TeamAction, request: Request, session: SessionDep, settings: SettingsDep,
                     response: Response, idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    response.headers.update(_NO_LEAK)
    await begin_write(session)
    status, body = await phone.team_act(session, token, data.action, key=idempotency_key, count=data.count,
                                        note=data.note, now=utcnow(), local_now=settings.local_now(),
                                        plans=request.app.state.plans, notices=request.app.state.notices)
    response.status_code = status
    return body
