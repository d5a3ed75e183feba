"""A live drill measured against the simulation's prediction for the same scope, plan and level.

:func:`measure_activation` reads what really happened in a drill activation (演练): every order's
notification, acknowledgement, decline and arrival times and the posts' headcount.
:func:`scenario_for` turns a scenario (its behaviour model and policy) into one of that activation:
its scope, hazard, level and start, on the live roster, without the scenario's injects.
:func:`compare_measured` sets the measured curves and rates beside the Monte Carlo's percentile bands,
for the report's "measured vs predicted" section. Only reads the database.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.models import Activation, Order, Post
from mobilize.db import aware
from mobilize.errors import InvalidInput, NotFound, Problem
from rosters.models import OrgUnit
from scenarios.metrics import stats
from scenarios.model import RosterSpec, Scenario

__all__ = ["compare_measured", "measure_activation", "scenario_for"]


async def measure_activation(session: AsyncSession, activation_id: int, *, timezone: str = "Asia/Shanghai",
                             now: datetime | None = None) -> dict[str, Any]:
    """Return the activation's facts and each order's answer times in minutes after the key press."""
    act = await session.get(Activation, activation_id)
    if act is None:
        raise NotFound("未找到该启动", f"No activation {activation_id}")
    if not act.is_drill:
        raise InvalidInput("只能与演练启动对比", "Only a drill activation can be compared",
                           [Problem("该启动不是演练", "that activation is not a drill", field="activation_id",
                                    value=activation_id)])
    scope = (await session.execute(select(OrgUnit.code).where(OrgUnit.id == act.scope_unit_id))).scalar_one()
    slots = (await session.execute(select(func.coalesce(func.sum(Post.headcount), 0))
                                   .where(Post.activation_id == activation_id, Post.active.is_(True)))).scalar_one()
    t0 = aware(act.started_at)
    until = aware(act.ended_at) or aware(now) or datetime.now(UTC)

    def m(x: datetime | None) -> float | None:
        return None if x is None else round((aware(x) - t0).total_seconds() / 60.0, 3)

    orders = []
    for o in (await session.execute(select(Order).where(Order.activation_id == activation_id)
                                    .order_by(Order.id))).scalars():
        declined = o.status == "declined" or o.closed_reason == "declined"
        orders.append({"notified": m(o.created_at), "acknowledged": m(o.acknowledged_at), "arrived": m(o.arrived_at),
                       "declined": m(o.closed_at) if declined else None,
                       "closed": m(o.closed_at) if o.closed_at and o.closed_reason != "activation_ended" else None})
    local = t0.astimezone(ZoneInfo(timezone)).replace(tzinfo=None, second=0, microsecond=0)
    return {"activation_id": activation_id, "scope": scope, "hazard": act.hazard, "level": act.level,
            "started_at": t0.isoformat(), "start_local": local.isoformat(), "status": act.status,
            "observed_minutes": math.ceil((until - t0).total_seconds() / 60.0 * 1000) / 1000, "slots": int(slots), "orders": orders}


def scenario_for(scenario: Scenario, measured: dict[str, Any]) -> Scenario:
    """Return ``scenario``'s behaviour and policy applied to the measured activation, on the live roster.

    The scenario's injects and its grids without signal are left out: the live drill had its own.
    """
    return replace(scenario, behaviour=replace(scenario.behaviour, no_signal=()), name=f"{scenario.name} · 演练启动 #{measured['activation_id']} drill activation",
                   roster=RosterSpec(source="database"), scope=measured["scope"], hazard=measured["hazard"],
                   level=measured["level"], start=datetime.fromisoformat(measured["start_local"]), injects=(),
                   variants=(), description=(
                       f"以「{scenario.name}」的行为模型，预测演练启动 #{measured['activation_id']}（{measured['scope']}）的回复与到岗，"
                       f"并与实测对比；场景中的注入不适用。 — The behaviour model of “{scenario.name}” predicting drill "
                       f"activation #{measured['activation_id']} ({measured['scope']}), set against what was measured; "
                       "the scenario's injects do not apply."))


def _held(orders: list[dict[str, Any]], field: str, t: float) -> int:
    """Orders that reached ``field`` by ``t`` and were not closed (declined, reassigned, released) before it."""
    return sum(1 for o in orders if o[field] is not None and o[field] <= t
               and (o["closed"] is None or o["closed"] > t or field == "arrived"))


def compare_measured(measured: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Return the measured curves and rates beside the prediction (the baseline of ``result``)."""
    a = result["variants"][0]["aggregate"]
    s = a["series"]
    seen = measured["observed_minutes"]
    orders = measured["orders"]
    curve = {"t": [], "confirmed": [], "arrived": []}
    grid = [t for t in s["t"] if t <= seen]
    for t in grid + ([seen] if not grid or grid[-1] < seen else []):  # the prediction's minutes, then now / the end
        curve["t"].append(t)
        curve["confirmed"].append(_held(orders, "acknowledged", t))
        curve["arrived"].append(_held(orders, "arrived", t))
    curve["on_grid"] = len(grid)
    slots = measured["slots"] or 1
    first = [o for o in orders if o["notified"] is not None]
    answered = [o for o in first if o["acknowledged"] is not None or o["declined"] is not None]
    delays = [o["acknowledged"] - o["notified"] for o in first if o["acknowledged"] is not None]
    travel = [o["arrived"] - o["acknowledged"] for o in first if o["arrived"] is not None and o["acknowledged"] is not None]

    def reached(field: str, share: int) -> float | None:
        for t, v in zip(curve["t"], curve[field]):
            if v * 100 >= slots * share:
                return t
        return None

    runs = result["variants"][0]["runs"]
    predicted_decline = stats([r["counts"].get("declined", 0) / max(r["counts"].get("notified", 1), 1) for r in runs])
    rows = []
    for kind in ("confirmed", "arrived"):
        for share in ("50", "90"):
            rows.append({"metric": f"{kind} {share}%", "measured": reached(kind, int(share)),
                         "predicted": a["time_to"][kind][share]})
    return {"activation_id": measured["activation_id"], "status": measured["status"], "observed_minutes": seen,
            "slots": measured["slots"], "notified": len(first), "curve": curve,
            "answer_rate": len(answered) / len(first) if first else None,
            "decline_rate": sum(1 for o in first if o["declined"] is not None) / len(first) if first else None,
            "predicted_decline_rate": predicted_decline,
            "ack_delay": stats(delays), "travel": stats(travel), "time_to": rows,
            "predicted_slots": a["slots"]["mean"]}
