"""Roster routes under ``/api/v1``: units, people, teams, readiness, vocabulary, import and export."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, UploadFile
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from mobilize.deps import CommitRoute, PrincipalDep, SessionDep, SettingsDep, SkillsDep, WorkGroupsDep
from mobilize.errors import Forbidden, InvalidInput, Problem
from rosters import readiness as readiness_service
from rosters import places, service, transfer
from rosters.exporter import write_roster
from rosters.schemas import (
    Page, PersonCreate, PersonRead, PersonUpdate, Readiness, TeamCreate, TeamRead, TeamUpdate, UnitCreate,
    UnitRead, UnitUpdate,
)
from rosters.vocabulary import ZH, Availability, MemberKind, PersonStatus, TeamKind, UnitLevel

router = APIRouter(route_class=CommitRoute)

PageNo = Annotated[int, Query(ge=1, description="页码 page number, from 1")]
PageSize = Annotated[int, Query(ge=1, le=500, description="每页条数 items per page")]


def _require_writer(principal) -> None:
    if not principal.can_write_rosters:
        raise Forbidden("当前角色不能修改花名册", "Your role may not change rosters")


@router.get("/vocabulary", tags=["roster"], summary="词表 The words rosters use")
async def vocabulary(skills: SkillsDep, workgroups: WorkGroupsDep) -> dict:
    def enum(e):
        return [{"code": m.value, "zh": ZH[m]} for m in e]

    return {
        "skills": [{"code": s.code, "zh": s.zh, "en": s.en} for s in skills.skills],
        "peacetime_groups": [{"code": g.code, "zh": g.zh, "en": g.en} for g in workgroups.peacetime],
        "wartime_groups": [{"code": g.code, "zh": g.zh, "en": g.en} for g in workgroups.wartime],
        "member_kinds": enum(MemberKind), "team_kinds": enum(TeamKind), "levels": enum(UnitLevel),
        "availability": enum(Availability), "statuses": enum(PersonStatus),
    }


@router.get("/units", tags=["org"], summary="组织架构 List org units", response_model=Page[UnitRead])
async def list_units(session: SessionDep, principal: PrincipalDep, parent: str | None = None,
                     level: UnitLevel | None = None, q: str | None = None, page: PageNo = 1,
                     page_size: PageSize = 100):
    return await service.list_units(session, principal, parent_code=parent, level=level, q=q, page=page,
                                    page_size=page_size)


@router.post("/units", tags=["org"], status_code=201, response_model=UnitRead, summary="新增单位 Create a unit")
async def create_unit(data: UnitCreate, session: SessionDep, principal: PrincipalDep, workgroups: WorkGroupsDep):
    _require_writer(principal)
    return await service.create_unit(session, principal, data, workgroups=workgroups)


@router.get("/units/{code}", tags=["org"], response_model=UnitRead, summary="单位详情 One unit")
async def get_unit(code: str, session: SessionDep, principal: PrincipalDep):
    unit = await service.unit_by_code(session, principal, code)
    return await service.unit_with_parent(session, unit.id)


@router.patch("/units/{code}", tags=["org"], response_model=UnitRead, summary="修改单位 Update a unit")
async def update_unit(code: str, data: UnitUpdate, session: SessionDep, principal: PrincipalDep):
    return await service.update_unit(session, principal, code, data)


@router.get("/units/{code}/readiness", tags=["org"], response_model=Readiness,
            summary="战备状态 Readiness of a subtree")
async def unit_readiness(code: str, session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                         workgroups: WorkGroupsDep):
    return await readiness_service.readiness(session, principal, code, at=settings.local_now(),
                                             workgroups=workgroups)


@router.get("/people", tags=["people"], response_model=Page[PersonRead], summary="人员 List people")
async def list_people(
    session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
    unit: Annotated[str | None, Query(description="单位编码：该单位及其下级 unit code (subtree)")] = None,
    kind: MemberKind | None = None,
    skill: Annotated[str | None, Query(description="技能编码 skill code")] = None,
    group: Annotated[str | None, Query(description="工作组编码 work-group code (peacetime or wartime)")] = None,
    party: Annotated[bool | None, Query(description="是否党员 party member")] = None,
    available: Annotated[bool | None, Query(description="当前可调用 available now")] = None,
    team: Annotated[str | None, Query(description="队伍编码 team code")] = None,
    q: Annotated[str | None, Query(description="姓名（或手机号）包含 name (or phone) contains")] = None,
    page: PageNo = 1, page_size: PageSize = 50,
):
    return await service.list_people(session, principal, at=settings.local_now(), unit_code=unit,
                                     kind=kind.value if kind else None, skill=skill, group=group, party=party,
                                     available=available, team_code=team, q=q, page=page, page_size=page_size)


@router.post("/people", tags=["people"], status_code=201, response_model=PersonRead, summary="登记人员 Create a person")
async def create_person(data: PersonCreate, session: SessionDep, principal: PrincipalDep, settings: SettingsDep,
                        skills: SkillsDep, workgroups: WorkGroupsDep):
    _require_writer(principal)
    return await service.create_person(session, principal, data, at=settings.local_now(), skills=skills,
                                       workgroups=workgroups)


@router.get("/people/{person_id}", tags=["people"], response_model=PersonRead, summary="人员详情 One person")
async def get_person(person_id: int, session: SessionDep, principal: PrincipalDep, settings: SettingsDep):
    return await service.get_person(session, principal, person_id, at=settings.local_now())


@router.patch("/people/{person_id}", tags=["people"], response_model=PersonRead, summary="修改人员 Update a person")
async def update_person(person_id: int, data: PersonUpdate, session: SessionDep, principal: PrincipalDep,
                        settings: SettingsDep, skills: SkillsDep, workgroups: WorkGroupsDep):
    _require_writer(principal)
    return await service.update_person(session, principal, person_id, data, at=settings.local_now(),
                                       skills=skills, workgroups=workgroups)


@router.get("/teams", tags=["teams"], response_model=Page[TeamRead], summary="队伍 List teams")
async def list_teams(session: SessionDep, principal: PrincipalDep, unit: str | None = None,
                     kind: TeamKind | None = None, page: PageNo = 1, page_size: PageSize = 100):
    return await service.list_teams(session, principal, unit_code=unit, kind=kind.value if kind else None,
                                    page=page, page_size=page_size)


@router.post("/teams", tags=["teams"], status_code=201, response_model=TeamRead, summary="新建队伍 Create a team")
async def create_team(data: TeamCreate, session: SessionDep, principal: PrincipalDep, workgroups: WorkGroupsDep):
    _require_writer(principal)
    return await service.create_team(session, principal, data, workgroups=workgroups)


@router.get("/teams/{code}", tags=["teams"], response_model=TeamRead, summary="队伍详情 One team")
async def get_team(code: str, session: SessionDep, principal: PrincipalDep):
    return await service.get_team(session, principal, code)


@router.patch("/teams/{code}", tags=["teams"], response_model=TeamRead, summary="修改队伍 Update a team")
async def update_team(code: str, data: TeamUpdate, session: SessionDep, principal: PrincipalDep,
                      workgroups: WorkGroupsDep):
    return await service.update_team(session, principal, code, data, workgroups=workgroups)


_SUFFIXES = (".csv", ".xlsx")


@router.post("/imports", tags=["import/export"], summary="导入花名册 Import roster files (all or nothing)")
async def import_roster(
    session: SessionDep, principal: PrincipalDep, skills: SkillsDep, workgroups: WorkGroupsDep,
    files: Annotated[list[UploadFile], File(description="CSV (UTF-8/GBK) or XLSX files of units, people, teams")],
    dry_run: Annotated[bool, Query(description="只检查不写入 check only, write nothing")] = False,
) -> dict:
    _require_writer(principal)
    with tempfile.TemporaryDirectory(prefix="mobilize-import-") as tmp:
        paths = []
        for i, upload in enumerate(files):
            name = Path(upload.filename or f"upload{i}").name
            if not name.lower().endswith(_SUFFIXES):
                raise InvalidInput("文件格式不支持", "Unsupported file type",
                                   [Problem("只接受 .csv 或 .xlsx 文件", "only .csv and .xlsx files are accepted", file=name)])
            path = Path(tmp) / f"{i}-{name}"
            path.write_bytes(await upload.read())
            paths.append(path)
        report = await transfer.import_files(session, paths, skills=skills, workgroups=workgroups,
                                             principal=principal, dry_run=dry_run)
    return report.as_dict()


@router.get("/exports", tags=["import/export"], summary="导出花名册 Export the roster of a subtree",
            response_class=FileResponse)
async def export_roster(session: SessionDep, principal: PrincipalDep, unit: str | None = None,
                        format: Literal["xlsx", "csv"] = "xlsx",
                        table: Annotated[Literal["people", "units", "teams"], Query(
                            description="CSV only: which table (a CSV holds one)")] = "people"):
    roster = await transfer.roster_of(session, unit_code=unit, principal=principal)
    tmp = tempfile.mkdtemp(prefix="mobilize-export-")
    path = Path(tmp) / f"roster.{format}"
    write_roster(path, roster, mask_phones=not principal.sees_full_phone)
    if format == "csv" and table != "people":
        path = path.with_name(f"roster.{table}.csv")
    filename = f"roster-{unit or 'all'}{'' if format == 'xlsx' or table == 'people' else '.' + table}.{format}"
    media = ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" if format == "xlsx"
             else "text/csv; charset=utf-8")
    return FileResponse(path, media_type=media, filename=filename,
                        background=BackgroundTask(shutil.rmtree, tmp, ignore_errors=True))


@router.get("/units/{code}/places", tags=["org"], response_model=list[places.PlaceRead],
            summary="地点 Named places of a community (gates, shelters, warehouses, …)")
async def list_places(code: str, session: SessionDep, principal: PrincipalDep):
    return await places.list_places(session, principal, code)


@router.post("/units/{code}/places", tags=["org"], status_code=201, response_model=places.PlaceRead,
             summary="登记地点 Add a named place to a community")
async def create_place(code: str, data: places.PlaceCreate, session: SessionDep, principal: PrincipalDep):
    return await places.create_place(session, principal, code, data)
