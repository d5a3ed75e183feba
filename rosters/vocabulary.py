"""The words rosters are written in: org levels, member kinds, skills and the work-group template.

Each closed list is a ``StrEnum`` whose values are the stable codes stored in the database; ``ZH``
gives the Chinese name and ``ALIASES`` the words a roster may use instead (Chinese or English).
Skills and work groups are configurable data files (``rosters/data/*.yaml``), loaded by
:func:`load_skills` and :func:`load_workgroups`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

from mobilize.errors import InvalidInput, Problem

__all__ = [
    "UnitLevel",
    "MemberKind",
    "Register",
    "TeamKind",
    "Availability",
    "PersonStatus",
    "Skill",
    "SkillVocabulary",
    "WorkGroupDef",
    "WorkGroupTemplate",
    "load_skills",
    "load_workgroups",
    "lookup",
]


class UnitLevel(StrEnum):
    """Levels of the org tree, top down (市 → 区/县 → 街道 → 社区 → 网格 → 楼栋)."""

    CITY = "city"
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"
    GRID = "grid"
    BUILDING = "building"

    @property
    def depth(self) -> int:
        return list(UnitLevel).index(self)


class MemberKind(StrEnum):
    """Who a person is in the mobilization (人员类别)."""

    REPORTING_MEMBER = "reporting_member"  # 在职党员"双报到"
    VOLUNTEER = "volunteer"  # 志愿者
    SQUAD_MEMBER = "squad_member"  # 党员突击队员
    COMMUNITY_WORKER = "community_worker"  # 社区工作者
    GRID_WORKER = "grid_worker"  # 网格员

    @property
    def register(self) -> "Register":
        """Which of the two registers the city keeps this kind in."""
        if self in (MemberKind.REPORTING_MEMBER, MemberKind.VOLUNTEER):
            return Register.SUNK_VOLUNTEERS
        return Register.FRONTLINE


class Register(StrEnum):
    """The two registers: 应急一线人员 (front-line staff) and 下沉志愿者 (volunteers sunk to communities)."""

    FRONTLINE = "frontline"
    SUNK_VOLUNTEERS = "sunk_volunteers"


class TeamKind(StrEnum):
    """Kinds of team (队伍类型)."""

    VOLUNTEER_TEAM = "volunteer_team"  # 志愿服务队
    COMMANDO_SQUAD = "commando_squad"  # 党员突击队


class Availability(StrEnum):
    """When a person can serve (可服务时段)."""

    ANYTIME = "anytime"  # 随时
    WEEKDAYS = "weekdays"  # 仅工作日
    WEEKENDS = "weekends"  # 仅周末
    DAYTIME = "daytime"  # 仅白天 (08:00–20:00)
    NIGHTS = "nights"  # 仅夜间 (20:00–08:00)


class PersonStatus(StrEnum):
    """A person's standing status (状态); ``deployed`` is set only by an activation."""

    AVAILABLE = "available"  # 可用
    ON_LEAVE = "on_leave"  # 请假
    DEPLOYED = "deployed"  # 已派出
    INACTIVE = "inactive"  # 停用


ZH: dict[StrEnum, str] = {
    UnitLevel.CITY: "市",
    UnitLevel.DISTRICT: "区县",
    UnitLevel.STREET: "街道",
    UnitLevel.COMMUNITY: "社区",
    UnitLevel.GRID: "网格",
    UnitLevel.BUILDING: "楼栋",
    MemberKind.REPORTING_MEMBER: "报到党员",
    MemberKind.VOLUNTEER: "志愿者",
    MemberKind.SQUAD_MEMBER: "突击队员",
    MemberKind.COMMUNITY_WORKER: "社区工作者",
    MemberKind.GRID_WORKER: "网格员",
    Register.FRONTLINE: "应急一线人员",
    Register.SUNK_VOLUNTEERS: "下沉志愿者",
    TeamKind.VOLUNTEER_TEAM: "志愿服务队",
    TeamKind.COMMANDO_SQUAD: "党员突击队",
    Availability.ANYTIME: "随时",
    Availability.WEEKDAYS: "仅工作日",
    Availability.WEEKENDS: "仅周末",
    Availability.DAYTIME: "仅白天",
    Availability.NIGHTS: "仅夜间",
    PersonStatus.AVAILABLE: "可用",
    PersonStatus.ON_LEAVE: "请假",
    PersonStatus.DEPLOYED: "已派出",
    PersonStatus.INACTIVE: "停用",
}

ALIASES: dict[type[StrEnum], dict[str, str]] = {
    UnitLevel: {"城市": "city", "区": "district", "区县级": "district", "县": "district", "区/县": "district", "街": "street", "镇": "street",
                "乡镇": "street", "村": "community", "楼": "building"},
    MemberKind: {"在职党员": "reporting_member", "双报到党员": "reporting_member", "双报到": "reporting_member",
                 "报到党员": "reporting_member", "党员突击队员": "squad_member", "突击队": "squad_member",
                 "社工": "community_worker", "reporting member": "reporting_member",
                 "squad member": "squad_member", "community worker": "community_worker",
                 "grid worker": "grid_worker"},
    TeamKind: {"志愿队": "volunteer_team", "志愿服务队": "volunteer_team", "突击队": "commando_squad",
               "党员突击队": "commando_squad", "volunteer team": "volunteer_team", "squad": "commando_squad",
               "commando squad": "commando_squad"},
    Availability: {"全天": "anytime", "随时": "anytime", "工作日": "weekdays", "周末": "weekends",
                   "白天": "daytime", "夜间": "nights", "晚上": "nights", "always": "anytime"},
    PersonStatus: {"在岗": "available", "正常": "available", "请假": "on_leave", "休假": "on_leave",
                   "停用": "inactive", "离开": "inactive"},
}


def _norm(text: str) -> str:
    return " ".join(str(text).strip().lower().replace("_", " ").split())


def lookup(enum: type[StrEnum], text: str) -> StrEnum | None:
    """Return the member of ``enum`` that ``text`` names (code, Chinese name or alias), or None.

    >>> lookup(MemberKind, "双报到党员")
    <MemberKind.REPORTING_MEMBER: 'reporting_member'>
    >>> lookup(MemberKind, "Volunteer")
    <MemberKind.VOLUNTEER: 'volunteer'>
    """
    key = _norm(text)
    if not key:
        return None
    for member in enum:
        if key in (_norm(member.value), _norm(ZH.get(member, ""))):
            return member
    for alias, value in ALIASES.get(enum, {}).items():
        if key == _norm(alias):
            return enum(value)
    return None


@dataclass(frozen=True, slots=True)
class Skill:
    code: str
    zh: str
    en: str
    aliases: tuple[str, ...] = ()
    share: float = 0.0


@dataclass(frozen=True)
class SkillVocabulary:
    """The skills a city recognises; :meth:`resolve` maps a roster's word to a skill code."""

    skills: tuple[Skill, ...]

    def __post_init__(self) -> None:
        index: dict[str, str] = {}
        for skill in self.skills:
            for word in (skill.code, skill.zh, skill.en, *skill.aliases):
                index[_norm(word)] = skill.code
        object.__setattr__(self, "_index", index)

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.skills)

    def resolve(self, word: str) -> str | None:
        """Return the skill code ``word`` names, or None if the vocabulary has no such skill."""
        return self._index.get(_norm(word))  # type: ignore[attr-defined]

    def get(self, code: str) -> Skill:
        for skill in self.skills:
            if skill.code == code:
                return skill
        raise KeyError(code)


@dataclass(frozen=True, slots=True)
class WorkGroupDef:
    code: str
    zh: str
    en: str
    phase: str  # "peacetime" | "wartime"


@dataclass(frozen=True)
class WorkGroupTemplate:
    """The city's 4 peacetime and 7 wartime groups (平时4个、战时7个)."""

    peacetime: tuple[WorkGroupDef, ...]
    wartime: tuple[WorkGroupDef, ...]

    @property
    def all(self) -> tuple[WorkGroupDef, ...]:
        return self.peacetime + self.wartime

    def resolve(self, phase: str, word: str) -> str | None:
        """Return the code of the ``phase`` group that ``word`` names (code, Chinese or English name)."""
        key = _norm(word)
        groups = self.peacetime if phase == "peacetime" else self.wartime
        for g in groups:
            if key in (_norm(g.code), _norm(g.zh), _norm(g.en), _norm(g.zh.removesuffix("组"))):
                return g.code
        return None


def _read_yaml(path: Path | None, default: str) -> tuple[str, object]:
    if path is None:
        ref = resources.files("rosters") / "data" / default
        return default, yaml.safe_load(ref.read_text(encoding="utf-8"))
    try:
        return str(path), yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidInput("无法读取配置文件", "Cannot read the configuration file",
                           [Problem(f"读取失败：{exc}", f"read failed: {exc}", file=str(path))]) from exc


def _bad(file: str, field: str, zh: str, en: str) -> InvalidInput:
    return InvalidInput("配置文件有误", "The configuration file is invalid", [Problem(zh, en, file=file, field=field)])


@lru_cache(maxsize=8)
def load_skills(path: Path | None = None) -> SkillVocabulary:
    """Return the skill vocabulary from ``path`` (default: the one shipped with rosters)."""
    name, data = _read_yaml(path, "skills.yaml")
    items = (data or {}).get("skills") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad(name, "skills", "缺少技能列表", "the list `skills` is missing or empty")
    skills, seen = [], set()
    for i, item in enumerate(items):
        field = f"skills[{i}]"
        if not isinstance(item, dict) or not item.get("code") or not item.get("zh"):
            raise _bad(name, field, "每项须有 code 和 zh", "each skill needs `code` and `zh`")
        code = str(item["code"])
        if code in seen:
            raise _bad(name, field, f"技能编码重复：{code}", f"duplicate skill code: {code}")
        seen.add(code)
        share = float(item.get("share", 0.0))
        if not 0.0 <= share <= 1.0:
            raise _bad(name, f"{field}.share", "share 须在 0 到 1 之间", "share must be between 0 and 1")
        skills.append(Skill(code, str(item["zh"]), str(item.get("en", code)),
                            tuple(str(a) for a in item.get("aliases", []) or []), share))
    return SkillVocabulary(tuple(skills))


@lru_cache(maxsize=8)
def load_workgroups(path: Path | None = None) -> WorkGroupTemplate:
    """Return the work-group template from ``path`` (default: the one shipped with rosters)."""
    name, data = _read_yaml(path, "workgroups.yaml")
    if not isinstance(data, dict):
        raise _bad(name, "", "须为含 peacetime 与 wartime 的映射", "must be a mapping with peacetime and wartime")
    out: dict[str, tuple[WorkGroupDef, ...]] = {}
    seen: set[str] = set()
    for phase in ("peacetime", "wartime"):
        items = data.get(phase)
        if not isinstance(items, list) or not items:
            raise _bad(name, phase, f"缺少 {phase} 工作小组列表", f"the list `{phase}` is missing or empty")
        groups = []
        for i, item in enumerate(items):
            field = f"{phase}[{i}]"
            if not isinstance(item, dict) or not item.get("code") or not item.get("zh"):
                raise _bad(name, field, "每项须有 code 和 zh", "each group needs `code` and `zh`")
            code = str(item["code"])
            if code in seen:
                raise _bad(name, field, f"工作小组编码重复：{code}", f"duplicate group code: {code}")
            seen.add(code)
            groups.append(WorkGroupDef(code, str(item["zh"]), str(item.get("en", code)), phase))
        out[phase] = tuple(groups)
    return WorkGroupTemplate(out["peacetime"], out["wartime"])
