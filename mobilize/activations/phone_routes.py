"""Phone routes of personal links (个人链接): the page's data, a person's buttons, a team leader's actions.

The hottest routes of an activation (every dispatched phone presses here), so they are matched
first (see :mod:`mobilize.router`) and the buttons take no per-request dependency: acknowledge,
en route and arrived go to the group-commit writer (:mod:`mobilize.activations.answers`).

The plainest press of all — ``{"action": "acknowledge"}`` (or en route, arrived) as JSON with one
``Idempotency-Key`` — is answered by :data:`fast_actions`, a plain Starlette route matched before
FastAPI's routing: the same writer and the same answer, without FastAPI's per-request body and header
machinery (about a third of an ack's CPU). Every other request, and every request the fast route is
not sure about, goes on to :func:`phone_act` unchanged: it stays the documented route (OpenAPI), with
its validation and its zh/en errors.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from mobilize import idempotency
from mobilize.activations import phone
from mobilize.db import begin_write, session_scope, utcnow
from mobilize.deps import CommitRoute, SessionDep, SettingsDep

__all__ = ["router", "fast_actions"]

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


# --- the fast route for plain presses --------------------------------------------------------------

#: Set in a request's scope once the fast route passed it on, so that routing it again skips the fast route.
_PASSED_ON = "mobilize.phone_full_route"
_FAST_FIELDS = frozenset(("action", "reason", "note"))


def _plain_press(scope: Scope, body: bytes) -> tuple[str, str] | None:
    """Return (action, idempotency key) if the request is a press the fast route answers as
    :func:`phone_act` would; None for anything else (which then goes to :func:`phone_act` itself).

    Only the unambiguous case: one JSON content type, one key of 8–128 characters, a JSON object
    with a grouped action spelled exactly and no reason or note (validation of those, whitespace
    stripping included, stays with the model).
    """
    content_type = key = None
    for name, value in scope["headers"]:
        if name == b"content-type":
            if content_type is not None:
                return None
            content_type = value
        elif name == b"idempotency-key":
            if key is not None:
                return None
            key = value
    if content_type is None or key is None or not 8 <= len(key) <= 128:
        return None
    if content_type.split(b";", 1)[0].strip().lower() != b"application/json":
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if type(data) is not dict or not data.keys() <= _FAST_FIELDS:
        return None
    action = data.get("action")
    if action not in phone.GROUPED_ACTIONS or data.get("reason") is not None or data.get("note") is not None:
        return None
    return action, key.decode("latin-1")


class _FastAct:
    """The fast route's ASGI app (a class: Starlette would wrap a function as a request endpoint)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await Request(scope, receive).body()
        press = _plain_press(scope, body)
        if press is None:  # not a plain press: the documented route decides, as if this one were not here
            scope[_PASSED_ON] = True
            await scope["app"].router(scope, _replay(body, receive), send)
            return
        action, key = press
        status, data = await scope["app"].state.answers.submit(scope["path_params"]["token"], action, key=key,
                                                               reason=None, note=None, now=utcnow())
        await JSONResponse(data, status_code=status, headers=_NO_LEAK)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands ``body`` once more, then listens to the client as before."""
    given = False

    async def again() -> dict:
        nonlocal given
        if given:
            return await receive()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


class _FastRoute(Route):
    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope.get(_PASSED_ON):
            return Match.NONE, {}
        return super().matches(scope)


#: Put first among the app's routes (see :func:`mobilize.app.create_app`); not in the OpenAPI schema,
#: where :func:`phone_act` documents the same path.
fast_actions = _FastRoute("/api/v1/m/{token}/actions", _FastAct(), methods=["POST"], include_in_schema=False)
