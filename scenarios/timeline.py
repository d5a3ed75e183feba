"""A scenario's timeline: the injects (level change, road cut, illness, extra posts) and their parsing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mobilize.errors import Problem
from mobilize.plans import Plan, parse_level
from mobilize.yamlfile import YamlDoc
from rosters.vocabulary import MemberKind, load_skills

__all__ = ["ExtraPosts", "Illness", "Inject", "LevelChange", "RoadCut", "parse_timeline"]


@dataclass(frozen=True, slots=True)
class LevelChange:
    at: float
    level: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class RoadCut:
    """A grid becomes unreachable: its posts only from inside, its people only to its posts."""

    at: float
    grid: str
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Illness:
    """A share of the people of a kind (and/or holding a skill) becomes unavailable."""

    at: float
    share: float
    kind: str | None = None
    skill: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class ExtraPosts:
    """A plan's post added at a named place of a community (or a grid), with a headcount."""

    at: float
    community: str
    place: str
    post: str
    headcount: int
    line: int | None = None


Inject = LevelChange | RoadCut | Illness | ExtraPosts


_T = re.compile(r"^\s*T?\s*\+?\s*(\d+(?:\.\d+)?)\s*(m|min|h)?\s*$", re.IGNORECASE)
_KINDS = ("level", "road_cut", "illness", "extra_posts", "end")


def _minutes(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        return float(raw) if raw >= 0 else None
    match = _T.match(str(raw))
    if match is None:
        return None
    value = float(match.group(1))
    return value * 60 if (match.group(2) or "").lower() == "h" else value


def parse_timeline(doc: YamlDoc, raw: Any, plan: Plan | None, problems: list[Problem]):
    """Return (injects in time order, end minute) of the ``timeline`` list; add each mistake to ``problems``."""
    def bad(path: tuple, zh: str, en: str) -> None:
        problems.append(doc.problem(path, zh, en))

    if not isinstance(raw, list) or not raw:
        bad(("timeline",), "timeline 须为非空列表，且以 {at: 分钟, end: true} 结束",
            "`timeline` must be a non-empty list ending with {at: minutes, end: true}")
        return (), None
    injects: list[tuple[float, int, Inject]] = []
    ends: list[tuple[float, int]] = []
    skills = load_skills()
    for i, item in enumerate(raw):
        path = ("timeline", i)
        line = doc.line(path)
        if not isinstance(item, dict):
            bad(path, "每项须为映射，如 {at: 45, level: I}", "each entry must be a mapping such as {at: 45, level: I}")
            continue
        at = _minutes(item.get("at"))
        if at is None:
            bad((*path, "at"), "须写 at: 启动后的分钟数（≥ 0），如 45 或 \"T+45\"",
                "`at` must give minutes after the key press (≥ 0), e.g. 45 or \"T+45\"")
            continue
        kinds = [k for k in _KINDS if k in item]
        for key in sorted(set(item) - set(_KINDS) - {"at"}, key=str):
            bad((*path, key), f"未知注入 {key}，可选：{'、'.join(_KINDS)}", f"unknown inject `{key}`; known: {', '.join(_KINDS)}")
        if len(kinds) != 1:
            if len(kinds) > 1:
                bad(path, "每项只能有一种注入", "one inject per entry")
            elif set(item) <= {"at"}:
                bad(path, f"缺少注入，可选：{'、'.join(_KINDS)}", f"no inject given; known: {', '.join(_KINDS)}")
            continue
        kind, value = kinds[0], item[kinds[0]]
        where = (*path, kind)
        if kind == "end":
            if value is not True:
                bad(where, "须写 end: true", "write `end: true`")
            ends.append((at, i))
        elif kind == "level":
            lvl = parse_level(str(value))
            if lvl is None:
                bad(where, "响应级别须为 I、II、III 或 IV", "level must be I, II, III or IV")
            else:
                injects.append((at, i, LevelChange(at, lvl, line)))
        elif kind == "road_cut":
            if not isinstance(value, str) or not value:
                bad(where, "须为网格编码", "must be a grid code")
            else:
                injects.append((at, i, RoadCut(at, value, line)))
        elif kind == "illness":
            inject = _illness(doc, where, value, at, line, skills, problems)
            if inject is not None:
                injects.append((at, i, inject))
        else:
            inject = _extra(doc, where, value, at, line, plan, problems)
            if inject is not None:
                injects.append((at, i, inject))
    if not ends:
        bad(("timeline",), "timeline 须有结束项 {at: 分钟, end: true}", "the timeline needs an end: {at: minutes, end: true}")
        return (), None
    if len(ends) > 1:
        bad(("timeline", ends[1][1]), "只能有一个结束项", "only one end entry")
    end = ends[0][0]
    if end <= 0:
        bad(("timeline", ends[0][1], "at"), "结束时间须晚于 T+0", "the end must come after T+0")
    for at, i, _ in injects:
        if at > end:
            bad(("timeline", i, "at"), f"注入时间 T+{at:g} 晚于结束时间 T+{end:g}",
                f"inject at T+{at:g} comes after the end at T+{end:g}")
    return tuple(x for _, _, x in sorted(injects, key=lambda t: (t[0], t[1]))), end


def _illness(doc, where, value, at, line, skills, problems) -> Illness | None:
    if not isinstance(value, dict):
        problems.append(doc.problem(where, "须为 {kind: 类别, skill: 技能, share: 比例}", "must be {kind, skill, share}"))
        return None
    before = len(problems)
    for key in sorted(set(value) - {"kind", "skill", "share"}, key=str):
        problems.append(doc.problem((*where, key), f"未知字段 {key}（可选 kind、skill、share）",
                                    f"unknown field `{key}` (use kind, skill, share)"))
    share = value.get("share")
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
        problems.append(doc.problem((*where, "share"), f"比例须在 0 到 1 之间（现为 {share}）",
                                    f"`share` must be between 0 and 1 (got {share})"))
    kind = value.get("kind")
    known = [k.value for k in MemberKind]
    if kind is not None and kind not in known:
        problems.append(doc.problem((*where, "kind"), f"未知人员类别 {kind}，可选：{'、'.join(known)}",
                                    f"unknown member kind {kind}; known: {', '.join(known)}"))
    skill = value.get("skill")
    code = skills.resolve(str(skill)) if skill is not None else None
    if skill is not None and code is None:
        problems.append(doc.problem((*where, "skill"), f"未知技能「{skill}」", f"unknown skill '{skill}'"))
    if len(problems) > before:
        return None
    return Illness(at, float(share), kind, code, line)


def _extra(doc, where, value, at, line, plan, problems) -> ExtraPosts | None:
    if not isinstance(value, dict):
        problems.append(doc.problem(where, "须为 {community, place, post, headcount}", "must be {community, place, post, "
                                    "headcount}"))
        return None
    before = len(problems)
    for key in sorted(set(value) - {"community", "place", "post", "headcount"}, key=str):
        problems.append(doc.problem((*where, key), f"未知字段 {key}", f"unknown field `{key}`"))
    for key in ("community", "place", "post"):
        if not isinstance(value.get(key), (str, int)) or isinstance(value.get(key), bool):
            problems.append(doc.problem((*where, key), f"缺少 {key}", f"`{key}` is missing"))
    headcount = value.get("headcount")
    if isinstance(headcount, bool) or not isinstance(headcount, int) or headcount < 1:
        problems.append(doc.problem((*where, "headcount"), "人数须为正整数", "`headcount` must be a whole number ≥ 1"))
    post = str(value.get("post"))
    if plan is not None and "post" in value and post not in {p.code for p in plan.posts}:
        problems.append(doc.problem((*where, "post"), f"预案 {plan.hazard} 中没有岗位 {post}，可选："
                                    + "、".join(p.code for p in plan.posts),
                                    f"plan {plan.hazard} has no post {post}; known: " + ", ".join(p.code for p in plan.posts)))
    if len(problems) > before:
        return None
    return ExtraPosts(at, str(value["community"]), str(value["place"]), post, headcount, line)
