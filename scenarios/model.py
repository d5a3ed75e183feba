"""Drill scenarios (演练脚本): the YAML file, its dataclasses, and validation naming line and field.

A scenario names the roster, scope, hazard and starting level, a timeline of injects
(:mod:`scenarios.timeline`), a behaviour
model (:mod:`scenarios.behaviour`), the policy, and optionally variants to compare on the same seeds::

    name: 街道内涝 · Street-level flood
    roster: {demo: small, seed: 1}          # or {database: true}: the live roster
    scope: "330102001"                      # a street, a community, a district or the city
    hazard: flood
    level: II
    start: "2025-07-15 14:00"               # local time: decides who is available (白天/夜间, 工作日/周末)
    timeline:
      - {at: 45, level: I}                                   # raise (or lower) the response level
      - {at: 60, road_cut: 330102001003-04}                  # a grid becomes unreachable
      - {at: 90, illness: {kind: volunteer, share: 0.2}}     # a share of a kind (or skill) falls ill
      - {at: 120, extra_posts: {community: "330102001002", place: AZ1, post: evacuation_shelter, headcount: 6}}
      - {at: 240, end: true}                                 # switch back (战转平)
    behaviour: {...}                        # see scenarios.behaviour
    policy: {borrowing: true, deadlines: {acknowledge: 10}, costs: {borrow: 45}}
    compare:
      - {name: 不跨社区借调 no borrowing, policy: {borrowing: false}}

``at`` is minutes after the key press (T+m; ``"T+45"`` also reads). Structure, hazard, level, skills,
kinds and probabilities are checked by :func:`load_scenario`; codes that need the roster (scope,
grids, communities, places) by :func:`scenarios.world.check_codes`. Every problem names the file,
the line and the field, in Chinese and English.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from mobilize.costs import CostPolicy
from mobilize.errors import InvalidInput, Problem
from mobilize.plans import LEVELS, Plan, load_plans, parse_level
from mobilize.yamlfile import YamlDoc, load_yaml
from rosters.demo import SIZES
from rosters.vocabulary import load_skills, load_workgroups
from scenarios.behaviour import Behaviour, parse_behaviour
from scenarios.timeline import (
    ExtraPosts,
    Illness,
    Inject,
    LevelChange,
    RoadCut,
    parse_timeline,
)

__all__ = [
    "ExtraPosts",
    "Illness",
    "LevelChange",
    "PolicySpec",
    "RoadCut",
    "RosterSpec",
    "Scenario",
    "Variant",
    "default_plans",
    "load_scenario",
    "parse_scenario",
    "shipped",
]

_TOP = {"name", "description", "roster", "scope", "hazard", "level", "start", "timeline", "behaviour", "policy",
        "compare"}


@dataclass(frozen=True, slots=True)
class RosterSpec:
    """Whose people: the seeded demo city (``size``, ``seed``) or the live database."""

    source: str = "demo"  # demo | database
    size: str = "small"
    seed: int = 1
    pins: bool = True  # demo: pre-assign people to posts as ``mobilize demo`` does (flood, typhoon at level II)

    def label(self) -> str:
        return "live database 数据库花名册" if self.source == "database" else f"demo {self.size} seed {self.seed}"


@dataclass(frozen=True, slots=True)
class PolicySpec:
    """What a planner may vary: borrowing across communities (街道统筹), answer deadlines, cost weights."""

    borrowing: bool = True
    acknowledge: tuple[tuple[str, int], ...] = ()  # per-level overrides of the plan's deadlines
    arrive: tuple[tuple[str, int], ...] = ()
    costs: tuple[tuple[str, Any], ...] = ()

    def cost_policy(self) -> CostPolicy:
        return CostPolicy(**dict(self.costs))

    def deadlines(self, plan: Plan, level: str) -> tuple[int, int]:
        """Return (ack minutes, arrive minutes) at ``level``: the plan's, unless overridden."""
        return (dict(self.acknowledge).get(level, plan.acknowledge_minutes[level]),
                dict(self.arrive).get(level, plan.arrive_minutes[level]))


@dataclass(frozen=True, slots=True)
class Variant:
    """One side of a comparison: a name and the roster/policy it runs with."""

    name: str
    roster: RosterSpec
    policy: PolicySpec


@dataclass(frozen=True)
class Scenario:
    """A validated scenario; ``injects`` are in time order (ties keep the file's order)."""

    name: str
    roster: RosterSpec
    scope: str
    hazard: str
    level: str
    start: datetime
    end: float
    injects: tuple[Inject, ...]
    behaviour: Behaviour
    policy: PolicySpec
    variants: tuple[Variant, ...] = ()
    description: str = ""
    file: str = ""
    lines: dict[str, int | None] = field(default_factory=dict, compare=False, repr=False)

    @property
    def baseline(self) -> Variant:
        return Variant("基准 baseline", self.roster, self.policy)

    def problem(self, key: str, zh: str, en: str) -> Problem:
        """Return a problem at the line where ``key`` (a top-level field or ``timeline[i]``) was written."""
        return Problem(zh, en, file=self.file, row=self.lines.get(key), field=key)


_DEFAULT_PLANS: dict[str, Plan] | None = None


def default_plans() -> dict[str, Plan]:
    """Return the shipped plans (loaded once per process)."""
    global _DEFAULT_PLANS
    if _DEFAULT_PLANS is None:
        _DEFAULT_PLANS = load_plans(skills=load_skills(), workgroups=load_workgroups())
    return _DEFAULT_PLANS


def shipped() -> dict[str, Path]:
    """Return the shipped example scenarios by name (``scenarios/data/*.yaml``)."""
    root = Path(__file__).parent / "data"
    return {p.stem: p for p in sorted(root.glob("*.yaml"))}


def load_scenario(path: Path | str, *, plans: dict[str, Plan] | None = None) -> Scenario:
    """Return the scenario in the file ``path``; raise :class:`InvalidInput` listing every mistake."""
    return parse_scenario(load_yaml(path), plans=plans)


def parse_scenario(doc: YamlDoc, *, plans: dict[str, Plan] | None = None) -> Scenario:
    """Return the scenario of a parsed YAML document (see the module docstring for the format).

    >>> doc = YamlDoc("s.yaml", "scope: '330102001'\\nhazard: flood\\nlevel: II\\ntimeline:\\n  - {at: 300, level: I}\\n"
    ...               "  - {at: 240, end: true}\\n")
    >>> parse_scenario(doc)
    Traceback (most recent call last):
    ...
    mobilize.errors.InvalidInput: 演练脚本有误 / The scenario is invalid
      - s.yaml, 第5行 row 5, 字段 field timeline[0].at: 注入时间 T+300 晚于结束时间 T+240 / inject at T+300 comes after the end at T+240
    """
    plans = plans if plans is not None else default_plans()
    problems: list[Problem] = []
    data = doc.data

    def bad(path: tuple, zh: str, en: str) -> None:
        problems.append(doc.problem(path, zh, en))

    if not isinstance(data, dict):
        raise InvalidInput("演练脚本有误", "The scenario is invalid",
                           [doc.problem((), "脚本须为映射（键: 值）", "a scenario must be a mapping (key: value)")])
    for key in sorted(set(data) - _TOP, key=str):
        bad((key,), f"未知字段 {key}", f"unknown field `{key}`; known: {', '.join(sorted(_TOP))}")
    for key in ("scope", "hazard", "level", "timeline"):
        if key not in data:
            bad((), f"缺少 {key}", f"`{key}` is missing")
    hazard = str(data.get("hazard", ""))
    plan = plans.get(hazard)
    if "hazard" in data and plan is None:
        known = ", ".join(f"{p.hazard}（{p.zh}）" for p in plans.values())
        bad(("hazard",), f"未知灾种「{hazard}」，可选：{known}", f"unknown hazard '{hazard}'; known: {known}")
    level = parse_level(str(data.get("level", ""))) if "level" in data else None
    if "level" in data and level is None:
        bad(("level",), "响应级别须为 I、II、III 或 IV（Ⅰ级最高）", "level must be I, II, III or IV (I is the most severe)")
    start = _start(doc, data.get("start"), problems)
    roster = _roster(doc, ("roster",), data.get("roster"), RosterSpec(), problems)
    policy = _policy(doc, ("policy",), data.get("policy"), PolicySpec(), problems)
    behaviour = parse_behaviour(doc, ("behaviour",), data.get("behaviour"), problems)
    injects, end = parse_timeline(doc, data.get("timeline"), plan, problems) if "timeline" in data else ((), None)
    variants = []
    raw_compare = data.get("compare") or []
    if not isinstance(raw_compare, list):
        bad(("compare",), "compare 须为列表", "`compare` must be a list")
        raw_compare = []
    for i, raw in enumerate(raw_compare):
        path = ("compare", i)
        if not isinstance(raw, dict) or not raw.get("name"):
            bad(path, "每个对比方案须有 name", "each variant needs a `name`")
            continue
        for key in sorted(set(raw) - {"name", "roster", "policy"}, key=str):
            bad((*path, key), f"未知字段 {key}（可选 name、roster、policy）", f"unknown field `{key}` (use name, roster, policy)")
        variants.append(Variant(str(raw["name"]), _roster(doc, (*path, "roster"), raw.get("roster"), roster, problems),
                                _policy(doc, (*path, "policy"), raw.get("policy"), policy, problems)))
    if problems:
        raise InvalidInput("演练脚本有误", "The scenario is invalid", problems)
    lines = {key: doc.line((key,)) for key in data}
    lines.update({f"timeline[{i}]": doc.line(("timeline", i)) for i in range(len(data["timeline"]))})
    lines["behaviour.phones.no_signal"] = doc.line(("behaviour", "phones", "no_signal"))
    return Scenario(str(data.get("name") or Path(doc.name).stem), roster, str(data["scope"]), hazard, level, start, end,
                    injects, behaviour, policy, tuple(variants), str(data.get("description") or ""), doc.name, lines)


def _start(doc: YamlDoc, raw: Any, problems: list[Problem]) -> datetime:
    if raw is None:
        return datetime(2025, 7, 15, 14, 0)  # a Tuesday afternoon
    if isinstance(raw, datetime):
        return raw.replace(tzinfo=None)
    try:
        return datetime.fromisoformat(str(raw)).replace(tzinfo=None)
    except ValueError:
        problems.append(doc.problem(("start",), "须为本地时间，如 \"2025-07-15 14:00\"",
                                    "must be a local time such as \"2025-07-15 14:00\""))
        return datetime(2025, 7, 15, 14, 0)


def _roster(doc: YamlDoc, path: tuple, raw: Any, base: RosterSpec, problems: list[Problem]) -> RosterSpec:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "roster 须为映射，如 {demo: small, seed: 1} 或 {database: true}",
                                    "`roster` must be a mapping such as {demo: small, seed: 1} or {database: true}"))
        return base
    for key in sorted(set(raw) - {"demo", "seed", "database", "pins"}, key=str):
        problems.append(doc.problem((*path, key), f"未知字段 {key}（可选 demo、seed、pins、database）",
                                    f"unknown field `{key}` (use demo, seed, pins, database)"))
    if raw.get("database"):
        if "demo" in raw:
            problems.append(doc.problem(path, "demo 与 database 只能选一个", "choose demo or database, not both"))
        return replace(base, source="database")
    size = raw.get("demo", base.size)
    if size not in SIZES:
        problems.append(doc.problem((*path, "demo"), f"演示城市规模须为 {'、'.join(SIZES)}",
                                    f"the demo city size must be one of {', '.join(SIZES)}"))
    seed = raw.get("seed", base.seed)
    if isinstance(seed, bool) or not isinstance(seed, int):
        problems.append(doc.problem((*path, "seed"), "seed 须为整数", "`seed` must be an integer"))
        seed = base.seed
    pins = raw.get("pins", base.pins)
    if not isinstance(pins, bool):
        problems.append(doc.problem((*path, "pins"), "须为 true 或 false", "must be true or false"))
        pins = base.pins
    return RosterSpec("demo", str(size), seed, pins)


_COSTS = {f.name for f in fields(CostPolicy)} - {"unfilled_by_priority"}


def _policy(doc: YamlDoc, path: tuple, raw: Any, base: PolicySpec, problems: list[Problem]) -> PolicySpec:
    if raw is None:
        return base
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "policy 须为映射", "`policy` must be a mapping"))
        return base
    for key in sorted(set(raw) - {"borrowing", "deadlines", "costs"}, key=str):
        problems.append(doc.problem((*path, key), f"未知字段 {key}（可选 borrowing、deadlines、costs）",
                                    f"unknown field `{key}` (use borrowing, deadlines, costs)"))
    borrowing = raw.get("borrowing", base.borrowing)
    if not isinstance(borrowing, bool):
        problems.append(doc.problem((*path, "borrowing"), "须为 true 或 false", "must be true or false"))
        borrowing = base.borrowing
    out = {"acknowledge": dict(base.acknowledge), "arrive": dict(base.arrive)}
    deadlines = raw.get("deadlines") or {}
    if not isinstance(deadlines, dict):
        problems.append(doc.problem((*path, "deadlines"), "须为映射", "must be a mapping"))
        deadlines = {}
    for kind, value in deadlines.items():
        where = (*path, "deadlines", kind)
        if kind not in out:
            problems.append(doc.problem(where, "可选 acknowledge、arrive", "use acknowledge or arrive"))
            continue
        per = {lvl: value for lvl in LEVELS} if isinstance(value, int) and not isinstance(value, bool) else value
        if not isinstance(per, dict):
            problems.append(doc.problem(where, "须为正整数分钟或按级别的映射", "must be minutes or a per-level mapping"))
            continue
        for key, minutes in per.items():
            lvl = parse_level(str(key))
            if lvl is None or isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 1:
                problems.append(doc.problem((*where, key) if isinstance(value, dict) else where,
                                            "须为级别 I–IV 对应的正整数分钟", "must map a level I–IV to whole minutes ≥ 1"))
                continue
            out[kind][lvl] = minutes
    costs = dict(base.costs)
    raw_costs = raw.get("costs") or {}
    if not isinstance(raw_costs, dict):
        problems.append(doc.problem((*path, "costs"), "须为映射", "must be a mapping"))
        raw_costs = {}
    for key, value in raw_costs.items():
        if key not in _COSTS:
            problems.append(doc.problem((*path, "costs", key), f"未知成本项 {key}", f"unknown cost `{key}`; known: "
                                        + ", ".join(sorted(_COSTS))))
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            problems.append(doc.problem((*path, "costs", key), "须为非负数", "must be a number ≥ 0"))
        else:
            costs[key] = value
    return PolicySpec(borrowing, tuple(sorted(out["acknowledge"].items())), tuple(sorted(out["arrive"].items())),
                      tuple(sorted(costs.items())))
