"""Live status for the app: who may watch which channel, what a newcomer sees first, and the stats.

Wires :mod:`realtime` (which knows nothing of mobilize) to operators, activations and units.
Channels: ``activation:<id>`` (the command center: every event plus stats), ``unit:<code>`` (a
street or community view) and ``person:<id>`` (a phone, connected with its personal link: its own
orders only). An operator may watch an activation whose scope overlaps their subtree;
one whose subtree is only part of the scope (a community inside a city-wide activation) sees only
its own communities' order and shortage events and stats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from mobilize.access import Principal
from mobilize.activations.dispatch import open_link
from mobilize.activations.models import OPEN_ORDER_STATES, Activation, Order, Post
from mobilize.db import utcnow
from mobilize.deps import PrincipalDep
from mobilize.errors import MobilizeError, NotFound
from mobilize.security import principal_for, read_token
from realtime import log
from realtime.stats import tally
from rosters.models import OrgUnit

__all__ = ["Watcher", "PhoneWatcher", "LiveStatus", "router"]


@dataclass(frozen=True)
class PhoneWatcher:
    """A phone connected with a personal link: it may watch its own person's channel only."""

    person_id: int
    activation_id: int


@dataclass
class Watcher:
    """A connected operator, with the communities it may see of wider channels (None: all)."""

    principal: Principal
    communities: dict[str, frozenset[str] | None]  # channel -> visible community codes


class LiveStatus:
    """The callables :class:`realtime.websocket.RealtimeEndpoint` and :class:`realtime.stats.StatsTicker` need."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], secret: str) -> None:
        self.sessionmaker = sessionmaker
        self.secret = secret
        self._stats_views: tuple[dict[str, Any] | None, dict[frozenset[str], dict[str, Any]]] = (None, {})

    async def authenticate(self, token: str) -> Watcher | PhoneWatcher | None:
        """Return who a token is: an operator (signed token) or a person (their phone link)."""
        try:
            operator_id = read_token(token, secret=self.secret)
        except MobilizeError:
            return await self._phone(token)
        try:
            async with self.sessionmaker() as session:
                return Watcher(await principal_for(session, operator_id), {})
        except MobilizeError:
            return None

    async def _phone(self, token: str) -> PhoneWatcher | None:
        try:
            async with self.sessionmaker() as session:
                link = await open_link(session, token, now=utcnow())
        except MobilizeError:
            return None
        return PhoneWatcher(link.person_id, link.activation_id)

    async def authorize(self, watcher: Watcher | PhoneWatcher, channel: str) -> bool:
        kind, _, key = channel.partition(":")
        if isinstance(watcher, PhoneWatcher):  # a phone sees its own person's stream, nothing else
            return channel == f"person:{watcher.person_id}"
        principal = watcher.principal
        async with self.sessionmaker() as session:
            if kind == "activation" and key.isdigit():
                path = (await session.execute(select(OrgUnit.path).join(
                    Activation, Activation.scope_unit_id == OrgUnit.id).where(Activation.id == int(key)))).scalar()
                if path is None:
                    return False
                if principal.covers(path):
                    watcher.communities[channel] = None
                    return True
                if principal.scope_path and principal.scope_path.startswith(path):
                    watcher.communities[channel] = await self._communities_under(session, principal.scope_path)
                    return True
                return False
            if kind == "unit" and key:
                path = (await session.execute(select(OrgUnit.path).where(OrgUnit.code == key))).scalar()
                if path is None or not principal.covers(path):
                    return False
                watcher.communities[channel] = None
                return True
        return False

    @staticmethod
    async def _communities_under(session: AsyncSession, path: str) -> frozenset[str]:
        rows = await session.execute(select(OrgUnit.code).where(OrgUnit.level == "community",
                                                                OrgUnit.path.startswith(path)))
        return frozenset(rows.scalars())

    def filter(self, watcher: Watcher | PhoneWatcher, message: dict[str, Any]) -> dict[str, Any] | None:
        if isinstance(watcher, PhoneWatcher):
            return message
        channel = message.get("stream") or message.get("channel")
        visible = watcher.communities.get(channel)
        if visible is None:
            return message
        if message.get("type") == "stats":
            # One view per set of communities per stats message, shared by every watcher with that set (the
            # fan-out then reuses its frame instead of encoding it again for each of them).
            if self._stats_views[0] is not message:
                self._stats_views = (message, {})
            views = self._stats_views[1]
            view = views.get(visible)
            if view is None:
                mine = {code: row for code, row in message.get("communities", {}).items() if code in visible}
                view = views[visible] = {**message, **tally(mine)}
            return view
        community = (message.get("body") or {}).get("community")
        if community is not None and community not in visible:
            return None
        return message

    async def snapshot(self, channel: str, watcher: Watcher | PhoneWatcher) -> dict[str, Any]:
        kind, _, key = channel.partition(":")
        async with self.sessionmaker() as session:
            if kind == "person":
                order = (await session.execute(select(Order.id, Order.status).where(
                    Order.person_id == int(key), Order.activation_id == watcher.activation_id)
                    .order_by(Order.id.desc()).limit(1))).first()
                return {"person": int(key), "order": order.id if order else None,
                        "status": order.status if order else None}
            if kind == "activation":
                activation = await session.get(Activation, int(key))
                data = {"activation": {"id": activation.id, "hazard": activation.hazard, "level": activation.level,
                                       "drill": activation.is_drill, "status": activation.status,
                                       "summary": activation.summary}}
                stats = tally(await self._counts(session, int(key)))
                message = {"type": "stats", "channel": channel, **stats}
                data["stats"] = (self.filter(watcher, message) or message)
                return data
            unit = (await session.execute(select(OrgUnit).where(OrgUnit.code == key))).scalar_one()
            running = (await session.execute(select(Activation.id, Activation.hazard, Activation.level,
                                                    Activation.is_drill).join(OrgUnit, OrgUnit.id == Activation.scope_unit_id)
                                             .where(Activation.status == "active"))).all()
            return {"unit": {"code": unit.code, "name": unit.name, "level": unit.level, "phase": unit.phase},
                    "activations": [{"id": i, "hazard": h, "level": lvl, "drill": d} for i, h, lvl, d in running]}

    async def counts(self, channel: str) -> dict[str, dict[str, int]]:
        """Return per-community counts of an activation channel (empty for other channels)."""
        kind, _, key = channel.partition(":")
        if kind != "activation" or not key.isdigit():
            return {}
        async with self.sessionmaker() as session:
            return await self._counts(session, int(key))

    @staticmethod
    async def _counts(session: AsyncSession, activation_id: int) -> dict[str, dict[str, int]]:
        community = aliased(OrgUnit)
        slots = dict((await session.execute(
            select(community.code, func.sum(Post.headcount)).join(community, community.id == Post.community_id)
            .where(Post.activation_id == activation_id, Post.active.is_(True)).group_by(community.code))).all())

        def count(*states: str):
            return func.sum(case((Order.status.in_(states), 1), else_=0))

        rows = (await session.execute(
            select(community.code, count(*OPEN_ORDER_STATES), count("acknowledged", "en_route", "arrived"),
                   count("en_route"), count("arrived"), count("declined"), count("escalated"))
            .join(Post, Post.id == Order.post_id).join(community, community.id == Post.community_id)
            .where(Order.activation_id == activation_id).group_by(community.code))).all()
        out = {code: {"slots": int(n or 0), "filled": 0, "acknowledged": 0, "en_route": 0, "arrived": 0,
                      "declined": 0, "escalated": 0} for code, n in slots.items()}
        for code, filled, ack, en_route, arrived, declined, escalated in rows:
            row = out.setdefault(code, {"slots": 0})
            row.update(filled=int(filled or 0), acknowledged=int(ack or 0), en_route=int(en_route or 0),
                       arrived=int(arrived or 0), declined=int(declined or 0), escalated=int(escalated or 0))
        return out


# --- the same over HTTP: what the command center reads before (or instead of) subscribing ---------------

router = APIRouter(tags=["live"])


async def _watch(request: Request, principal: Principal, activation_id: int) -> tuple[LiveStatus, Watcher, str]:
    """Return the app's LiveStatus, the operator as a watcher of the activation's channel, and the channel."""
    live: LiveStatus = request.app.state.live
    watcher, channel = Watcher(principal, {}), f"activation:{activation_id}"
    if not await live.authorize(watcher, channel):
        raise NotFound("未找到该启动记录", f"No activation {activation_id}")
    return live, watcher, channel


@router.get("/activations/{activation_id}/stats", summary="实时统计 Live stats of an activation")
async def activation_stats(activation_id: int, request: Request, principal: PrincipalDep) -> dict[str, Any]:
    """The ``stats`` message the websocket sends, with ``seq``: subscribe with ``since`` = seq to go live."""
    live, watcher, channel = await _watch(request, principal, activation_id)
    async with live.sessionmaker() as session:
        head = await log.head(session, channel)
        counts = await live._counts(session, activation_id)
    message = {"type": "stats", "channel": channel, "seq": head, "at": datetime.now(UTC).isoformat(), **tally(counts)}
    return live.filter(watcher, message) or message


@router.get("/activations/{activation_id}/events", summary="事件回放 Events of an activation after a seq")
async def activation_events(
    activation_id: int, request: Request, principal: PrincipalDep,
    since: Annotated[int, Query(ge=0, description="最后已处理的序号 last seq applied")] = 0,
    limit: Annotated[int, Query(ge=1, le=5000, description="最多条数 at most this many")] = 500,
) -> dict[str, Any]:
    """Events with seq > ``since`` in order, as the websocket replays them; ask again with ``since`` = ``next``
    while ``more`` (``next`` also passes events hidden from this operator's communities)."""
    live, watcher, channel = await _watch(request, principal, activation_id)
    async with live.sessionmaker() as session:
        head = await log.head(session, channel)
        events = await log.read_since(session, channel, since, limit=limit)
    shown = [m for m in (live.filter(watcher, e.to_message()) for e in events) if m is not None]
    last = events[-1].seq if events else since
    return {"channel": channel, "head": head, "next": last, "more": last < head, "events": shown}
