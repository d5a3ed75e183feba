"""Activation routes: plans, the one key, level changes, switch-back, posts, orders, branches, audit."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StrictBool
from sqlalchemy import select

from mobilize.activations import levels, operator_actions, pins, queries, service
from mobilize.activations.models import Activation
from mobilize.db import begin_write, utcnow
from mobilize.deps import CommitRoute, PrincipalDep, SessionDep, SettingsDep
from mobilize.models import Operator
from mobilize.plans import LEVEL_ZH, LEVELS, plan_posts
from rosters.models import OrgUnit
from rosters.service import unit_by_code

router = APIRouter(tags=["activation"], route_class=CommitRoute)


class ActivationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    scope: str = Field(description="启动范围：单位编码（社区、街道、区县或市）scope unit code")
    hazard: str = Field(description="灾种 hazard: flood, typhoon, epidemic, fire, earthquake")
    level: str = Field(description="响应级别 I–IV（Ⅰ级最高）response level, I most severe")
    drill: bool = Field(default=False, description="演练 drill (reaches no one on a real activation)")
    borrowing: StrictBool = Field(default=True, description="街道统筹：短缺岗位可从同街道其他社区借调 street-level "
                                  "borrowing for short posts; false: each community staffs its own posts")


class LevelChange(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    level: str = Field(description="新的响应级别 I–IV the new level")


class ActivationRead(BaseModel):
    id: int
    scope: str
    hazard: str
    level: str
    drill: bool
    status: str
    started_at: str
    started_by: str
    started_by_name: str = Field(description="谁启动的（操作员姓名，或命令行）who pressed the key: the operator's name, "
                                             "or the command line")
    ended_at: str | None
    summary: dict[str, Any]
    policy: dict[str, Any] | None = Field(default=None, description="求解所用成本策略 the cost policy it was solved with")


async def _read_many(session, activations: list[Activation]) -> list[ActivationRead]:
    """The API view of ``activations``: their scope codes and starters' names read in one query each."""
    codes = dict((await session.execute(select(OrgUnit.id, OrgUnit.code).where(
        OrgUnit.id.in_({a.scope_unit_id for a in activations})))).all()) if activations else {}
    operators = {int(key) for kind, _, key in (a.started_by.partition(":") for a in activations)
                 if kind == "operator" and key.isdigit()}
    names = dict((await session.execute(select(Operator.id, Operator.display_name).where(
        Operator.id.in_(operators)))).all()) if operators else {}

    def starter(started_by: str) -> str:
        kind, _, key = started_by.partition(":")
        if kind == "operator" and key.isdigit():
            return names.get(int(key)) or started_by
        return {"cli": "命令行 command line"}.get(started_by, started_by)

    return [ActivationRead(id=a.id, scope=codes[a.scope_unit_id], hazard=a.hazard, level=a.level,
                           drill=a.is_drill, status=a.status, started_at=a.started_at.isoformat(),
                           started_by=a.started_by, started_by_name=starter(a.started_by),
                           ended_at=a.ended_at.isoformat() if a.ended_at else None,
                           summary=a.summary or {}, policy=a.policy) for a in activations]


async def _read(session, activation: Activation) -> ActivationRead:
    return (await _read_many(session, [activation]))[0]


@router.get("/plans", summary="预案 The plans: hazards, levels, posts")
async def list_plans(request: Request) -> list[dict]:
    return [{"hazard": p.hazard, "zh": p.zh, "en": p.en, "levels": [
        {"level": lvl, "zh": LEVEL_ZH[lvl], "posts": len(p.posts_at(lvl)),
         "acknowledge_minutes": p.acknowledge_minutes[lvl], "arrive_minutes": p.arrive_minutes[lvl]} for lvl in LEVELS]}
        for p in request.app.state.plans.values()]


@router.get("/plans/{hazard}/preview", summary="启动前预览 What a plan would demand in a scope")
async def preview(hazard: str, request: Request, session: SessionDep, principal: PrincipalDep,
                  scope: Annotated[str, Query(description="单位编码 unit code")],
                  level: Annotated[str, Query(description="I–IV")]) -> dict:
    from mobilize.activations.inputs import load_scope

    plan, code = service.check_plan_request(request.app.state.plans, hazard, level)
    unit = await unit_by_code(session, principal, scope)
    units = await load_scope(session, unit)
    specs = plan_posts(plan, code, units.sites)
    by_group: dict[str, int] = {}
    by_skill: dict[str, int] = {}
    for s in specs:
        by_group[s.group] = by_group.get(s.group, 0) + s.headcount
        for skill in sorted(s.skills_all) or sorted(s.skills_any)[:1]:
            by_skill[skill] = by_skill.get(skill, 0) + s.headcount
    return {"hazard": plan.hazard, "level": code, "scope": scope, "communities": len(units.sites),
            "posts": len(specs), "slots": sum(s.headcount for s in specs), "slots_by_group": by_group,
            "slots_needing_skill": by_skill}


@router.post("/activations", status_code=201, response_model=ActivationRead,
             summary="一键启动 Activate (one key): switch a scope to wartime and dispatch",
             responses={200: {"description": "同一幂等键的重复请求 a retry with the same Idempotency-Key"},
                        409: {"description": "范围与正在进行的启动重叠 overlaps a running activation"}})
async def create_activation(data: ActivationCreate, request: Request, response: Response, session: SessionDep,
                            principal: PrincipalDep, settings: SettingsDep,
                            idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    await begin_write(session)
    activation, created = await service.activate(
        session, service.ActivateRequest(data.scope, data.hazard, data.level, data.drill, idempotency_key,
                                         data.borrowing),
        plans=request.app.state.plans, at=settings.local_now(), principal=principal, notices=request.app.state.notices)
    if not created:
        response.status_code = 200
    return await _read(session, activation)


@router.get("/activations", response_model=list[ActivationRead], summary="启动记录 Activations in my scope")
async def list_activations(session: SessionDep, principal: PrincipalDep, status: str | None = None):
    stmt = select(Activation).join(OrgUnit, OrgUnit.id == Activation.scope_unit_id).order_by(Activation.id.desc())
    if principal.scope_path:
        stmt = stmt.where(OrgUnit.path.startswith(principal.scope_path))
    if status:
        stmt = stmt.where(Activation.status == status)
    return await _read_many(session, list((await session.execute(stmt.limit(200))).scalars()))


@router.get("/activations/{activation_id}", response_model=ActivationRead, summary="启动详情 One activation")
async def get_activation(activation_id: int, session: SessionDep, principal: PrincipalDep):
    return await _read(session, await service.get_activation(session, activation_id, principal))


@router.post("/activations/{activation_id}/level", response_model=ActivationRead,
             summary="调整响应级别 Raise or lower the level (re-solves, keeps people in place)")
async def change_level(activation_id: int, data: LevelChange, request: Request, session: SessionDep,
                       principal: PrincipalDep, settings: SettingsDep):
    await begin_write(session)
    activation = await levels.change_level(session, activation_id, data.level, plans=request.app.state.plans,
                                           at=settings.local_now(), principal=principal,
                                           notices=request.app.state.notices)
    return await _read(session, activation)


@router.post("/activations/{activation_id}/end", response_model=ActivationRead,
             summary="战转平 End: release everyone, close branches, back to peacetime")
async def end_activation(activation_id: int, request: Request, session: SessionDep, principal: PrincipalDep):
    await begin_write(session)
    return await _read(session, await service.end(session, activation_id, principal=principal,
                                                   notices=request.app.state.notices))


@router.get("/activations/{activation_id}/posts", summary="岗位 Posts with fill")
async def posts(activation_id: int, session: SessionDep, principal: PrincipalDep, community: str | None = None,
                short: bool = False, page: Annotated[int, Query(ge=1)] = 1,
                page_size: Annotated[int, Query(ge=1, le=1000)] = 200):
    await service.get_activation(session, activation_id, principal)
    return await queries.list_posts(session, activation_id, principal, community=community, short_only=short,
                                    page=page, page_size=page_size)


@router.get("/activations/{activation_id}/orders", summary="派单 Dispatch orders")
async def orders(activation_id: int, session: SessionDep, principal: PrincipalDep, status: str | None = None,
                 post: int | None = None, community: str | None = None, page: Annotated[int, Query(ge=1)] = 1,
                 page_size: Annotated[int, Query(ge=1, le=1000)] = 200):
    await service.get_activation(session, activation_id, principal)
    return await queries.list_orders(session, activation_id, principal, status=status, post_id=post,
                                     community=community, page=page, page_size=page_size)


@router.get("/activations/{activation_id}/orders/{order_id}", summary="派单详情及原因 One order and why")
async def order(activation_id: int, order_id: int, session: SessionDep, principal: PrincipalDep):
    await service.get_activation(session, activation_id, principal)
    return await queries.get_order(session, activation_id, order_id, principal)


@router.get("/activations/{activation_id}/branches", summary="临时党支部 Temporary party branches")
async def branches(activation_id: int, session: SessionDep, principal: PrincipalDep):
    await service.get_activation(session, activation_id, principal)
    return await queries.list_branches(session, activation_id, principal)


@router.get("/activations/{activation_id}/problem",
            summary="分配问题审计导出 The assignment problem and its solution, to verify optimality")
async def problem(activation_id: int, session: SessionDep, principal: PrincipalDep):
    await service.get_activation(session, activation_id, principal)
    return await queries.problem_export(session, activation_id)


class PinSuggest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    hazard: str
    level: str = "I"


@router.get("/units/{code}/pins", tags=["pre-assignment"], summary="平时编组 Pins of a subtree")
async def list_pins(code: str, session: SessionDep, principal: PrincipalDep, hazard: str | None = None):
    return await pins.list_pins(session, principal, code, hazard)


@router.post("/pins", tags=["pre-assignment"], status_code=201,
             summary="编组到岗 Pin a person to a post of a plan (replaces their pin for that hazard)")
async def create_pin(data: pins.PinCreate, request: Request, session: SessionDep, principal: PrincipalDep):
    return await pins.create_pin(session, principal, data, request.app.state.plans)


@router.delete("/pins/{pin_id}", tags=["pre-assignment"], status_code=204, summary="取消编组 Remove a pin")
async def delete_pin(pin_id: int, session: SessionDep, principal: PrincipalDep) -> Response:
    await pins.delete_pin(session, principal, pin_id)
    return Response(status_code=204)


@router.post("/units/{code}/pins/suggest", tags=["pre-assignment"],
             summary="一键编组 Pin everyone of a subtree where an optimal solve would put them")
async def suggest(code: str, data: PinSuggest, request: Request, session: SessionDep, principal: PrincipalDep,
                  settings: SettingsDep):
    plan, level = service.check_plan_request(request.app.state.plans, data.hazard, data.level)
    await begin_write(session)
    return await pins.suggest_pins(session, principal, code, plan, level, at=settings.local_now())


@router.get("/units/{code}/coverage", tags=["pre-assignment"],
            summary="预案覆盖率 How much of a plan's demand pins cover with people available now")
async def coverage(code: str, request: Request, session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                   hazard: str, level: str = "I"):
    plan, lvl = service.check_plan_request(request.app.state.plans, hazard, level)
    return await pins.coverage(session, principal, code, plan, lvl, at=settings.local_now())


class OrderAction(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    action: str = Field(description="acknowledge | decline | arrive | release | cancel | reassign (改派)")
    reason: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=200)


@router.post("/activations/{activation_id}/orders/{order_id}/actions",
             summary="操作派单 Act on an order for a person (arrived, release, cancel, reassign to the next best)")
async def order_action(activation_id: int, order_id: int, data: OrderAction, request: Request, session: SessionDep,
                       principal: PrincipalDep, settings: SettingsDep,
                       idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    await begin_write(session)
    return await operator_actions.act_on_order(
        session, principal, activation_id, order_id, data.action, key=idempotency_key, reason=data.reason,
        note=data.note, now=utcnow(), local_now=settings.local_now(), plans=request.app.state.plans,
        notices=request.app.state.notices)


class MoveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    post_id: int = Field(description="目标岗位 the post to move the person to (same activation)")


@router.post("/activations/{activation_id}/orders/{order_id}/move",
             summary="调岗 Move the order's person to another post of the activation (the old post is left short)")
async def move_person(activation_id: int, order_id: int, data: MoveRequest, request: Request, session: SessionDep,
                      principal: PrincipalDep, idempotency_key: Annotated[str | None, Header(max_length=128)] = None):
    await begin_write(session)
    return await operator_actions.move_person(
        session, principal, activation_id, order_id, data.post_id, key=idempotency_key, now=utcnow(),
        plans=request.app.state.plans, notices=request.app.state.notices)


@router.post("/activations/{activation_id}/posts/{post_id}/fill",
             summary="向街道借调补缺 Fill a short post with the best available people of its street")
async def fill_post(activation_id: int, post_id: int, request: Request, session: SessionDep, principal: PrincipalDep,
                    settings: SettingsDep):
    await begin_write(session)
    return await operator_actions.fill_shortage(session, principal, activation_id, post_id, now=utcnow(),
                                                local_now=settings.local_now(), plans=request.app.state.plans,
                                                notices=request.app.state.notices)
