"""Named places of a community where posts stand: gates (卡口), shelters (安置点), warehouses (仓库), …"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.access import Principal
from mobilize.errors import Conflict, Forbidden, InvalidInput, Problem
from rosters.models import OrgUnit, Place
from rosters.service import unit_by_code
from rosters.vocabulary import UnitLevel

__all__ = ["PLACE_KINDS", "PlaceCreate", "PlaceRead", "list_places", "create_place", "demo_places"]

#: Kinds of place plans refer to (``location`` of a post), with their Chinese names.
PLACE_KINDS = {"office": "党群服务中心", "gate": "卡口", "shelter": "安置点", "warehouse": "物资仓库",
               "riverbank": "河道堤岸", "school": "学校", "clinic": "卫生服务站"}


class PlaceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-.]+$")
    kind: str = Field(description="office | gate | shelter | warehouse | riverbank | school | clinic")
    name: str = Field(min_length=1, max_length=128)
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class PlaceRead(PlaceCreate):
    id: int
    community: str


async def list_places(session: AsyncSession, principal: Principal, community_code: str) -> list[PlaceRead]:
    """Return a community's named places."""
    unit = await unit_by_code(session, principal, community_code)
    rows = (await session.execute(select(Place).where(Place.community_id == unit.id).order_by(Place.code))).scalars()
    return [PlaceRead(id=p.id, community=unit.code, code=p.code, kind=p.kind, name=p.name, lat=p.lat, lon=p.lon)
            for p in rows]


async def create_place(session: AsyncSession, principal: Principal, community_code: str, data: PlaceCreate) -> PlaceRead:
    """Return the new place of a community; the kind must be one plans know."""
    unit = await unit_by_code(session, principal, community_code)
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改花名册", "Your role may not change rosters")
    if unit.level != UnitLevel.COMMUNITY.value:
        raise InvalidInput("只有社区可以登记地点", "Only a community has places",
                           [Problem("请选择一个社区", "choose a community", field="community", value=community_code)])
    if data.kind not in PLACE_KINDS:
        raise InvalidInput("地点类型未知", "Unknown place kind",
                           [Problem("可选：" + "、".join(f"{k}（{v}）" for k, v in PLACE_KINDS.items()),
                                    "known kinds: " + ", ".join(PLACE_KINDS), field="kind", value=data.kind)])
    if (await session.execute(select(Place.id).where(Place.community_id == unit.id, Place.code == data.code))).first():
        raise Conflict("地点编码已存在", f"Place code {data.code} exists in this community",
                       [Problem("编码已被使用", "code already in use", field="code", value=data.code)])
    place = Place(community_id=unit.id, **data.model_dump())
    session.add(place)
    await session.flush()
    return PlaceRead(id=place.id, community=unit.code, **data.model_dump())


async def demo_places(session: AsyncSession, communities: Sequence[OrgUnit], seed: int = 1) -> int:
    """Give every community a service centre, a shelter, a warehouse, two gates and a riverbank (demo)."""
    rng = random.Random(seed)
    rows = []
    for c in communities:
        if c.lat is None or c.lon is None:
            continue
        for code, kind, name in (("ZX", "office", f"{c.name}党群服务中心"), ("AZ1", "shelter", f"{c.name}应急安置点"),
                                 ("CK1", "warehouse", f"{c.name}物资仓库"), ("KK1", "gate", f"{c.name}东门卡口"),
                                 ("KK2", "gate", f"{c.name}西门卡口"), ("HD1", "riverbank", f"{c.name}河道堤岸")):
            rows.append({"community_id": c.id, "code": code, "kind": kind, "name": name,
                         "lat": round(c.lat + rng.uniform(-0.003, 0.003), 6),
                         "lon": round(c.lon + rng.uniform(-0.003, 0.003), 6)})
    for i in range(0, len(rows), 5000):
        await session.execute(insert(Place.__table__), rows[i:i + 5000])
    return len(rows)
