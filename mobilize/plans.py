"""Plans (预案): per hazard and response level, the posts each community's wartime groups staff.

A plan is a YAML file (``mobilize/data/plans/<hazard>.yaml``, or a folder named by
``MOBILIZE_PLANS_DIR``). :func:`load_plans` validates every file and names the file, line and field
of each mistake; :func:`plan_posts` turns a plan, a level and the communities of a scope into
concrete posts with locations (pure).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from mobilize.errors import InvalidInput, Problem
from mobilize.yamlfile import YamlDoc
from rosters.vocabulary import SkillVocabulary, WorkGroupTemplate

__all__ = ["LEVELS", "LEVEL_ZH", "PostDef", "Plan", "Site", "PostSpec", "load_plans", "plan_posts", "parse_level"]

#: Response levels, most severe first (Ⅰ级 … Ⅳ级).
LEVELS = ("I", "II", "III", "IV")
LEVEL_ZH = {"I": "Ⅰ级", "II": "Ⅱ级", "III": "Ⅲ级", "IV": "Ⅳ级"}
_LEVEL_WORDS = {"1": "I", "2": "II", "3": "III", "4": "IV", "Ⅰ": "I", "Ⅱ": "II", "Ⅲ": "III", "Ⅳ": "IV",
                "一": "I", "二": "II", "三": "III", "四": "IV"}
PER = ("community", "grid", "place")


def parse_level(text: str) -> str | None:
    """Return the level code ``I``…``IV`` that ``text`` names (``2``, ``Ⅱ``, ``二级``, ``ii``), or None.

    >>> parse_level("Ⅱ级"), parse_level("3"), parse_level("iv"), parse_level("V")
    ('II', 'III', 'IV', None)
    """
    word = str(text).strip().upper().removesuffix("级").removesuffix("LEVEL").strip()
    word = _LEVEL_WORDS.get(word, word)
    return word if word in LEVELS else None


@dataclass(frozen=True, slots=True)
class PostDef:
    """A post of a plan, before it is placed in a community."""

    code: str
    group: str
    zh: str
    en: str
    location: str
    per: str
    headcount: Mapping[str, int]
    add_every: int = 0
    add: int = 0
    skills_all: frozenset[str] = frozenset()
    skills_any: frozenset[str] = frozenset()
    leader_required: bool = False
    priority: int = 3
    shift_hours: int = 12

    def headcount_at(self, level: str, grids: int) -> int:
        """Return the headcount at ``level`` for a community of ``grids`` grids (0: not staffed)."""
        base = self.headcount.get(level, 0)
        if base == 0:
            return 0
        return base + (grids // self.add_every) * self.add if self.add_every else base


@dataclass(frozen=True)
class Plan:
    """One hazard's plan: posts per level and the answer deadlines per level (minutes)."""

    hazard: str
    zh: str
    en: str
    posts: tuple[PostDef, ...]
    acknowledge_minutes: Mapping[str, int]
    arrive_minutes: Mapping[str, int]
    source: str = ""

    def posts_at(self, level: str) -> tuple[PostDef, ...]:
        return tuple(p for p in self.posts if p.headcount.get(level, 0) > 0)


@dataclass(frozen=True, slots=True)
class Site:
    """A community as a plan sees it: where it is, its grids and its named places."""

    community: str
    street: str
    lat: float
    lon: float
    grids: tuple[tuple[str, str, float, float], ...] = ()  # (code, name, lat, lon)
    places: tuple[tuple[str, str, str, float, float], ...] = ()  # (code, kind, name, lat, lon)


# Not frozen, for the speed of building tens of thousands (see costs.Person). Treat as immutable.
@dataclass(slots=True, unsafe_hash=True)
class PostSpec:
    """A concrete post of an activation: a plan's post at one place of one community."""

    key: str  # "<community>/<post code>[@<site code>]", stable across level changes
    community: str
    street: str
    code: str
    group: str
    zh: str
    en: str
    site_code: str | None
    site_name: str
    lat: float
    lon: float
    headcount: int
    skills_all: frozenset[str]
    skills_any: frozenset[str]
    leader_required: bool
    priority: int
    shift_hours: int

    def resized(self, headcount: int, leader_required: bool) -> PostSpec:
        """Return a copy with another headcount and leader need (``dataclasses.replace`` costs 8 µs a call)."""
        return PostSpec(self.key, self.community, self.street, self.code, self.group, self.zh, self.en, self.site_code,
                        self.site_name, self.lat, self.lon, headcount, self.skills_all, self.skills_any,
                        leader_required, self.priority, self.shift_hours)


def keep_on_level_change(holders: Mapping[str, list], specs: Sequence[PostSpec]) -> tuple[dict[str, list], list, list[PostSpec]]:
    """Return who stays when an activation's posts become ``specs``: (kept by post key, dropped, residual demand).

    ``holders`` maps a post key to its open orders (anything with ``leader_part``, ``cost`` and ``id``), in the
    order to walk them. Per post the leader stays first, then the cheapest, up to the new headcount; a post
    gone from ``specs`` drops all. The residual is each post's demand still open, needing a leader only where
    none stayed. The real level change and the drill simulator both decide it here, so they cannot drift.
    """
    spec_by_key = {s.key: s for s in specs}
    kept_at: dict[str, list] = {}
    dropped: list = []
    for key, here in holders.items():
        spec = spec_by_key.get(key)
        if spec is None:
            dropped += here
            continue
        if len(here) > spec.headcount:  # whom to keep is a choice only where some must go
            here = sorted(here, key=lambda o: (not o.leader_part, o.cost, o.id))
        if here[:spec.headcount]:
            kept_at[key] = here[:spec.headcount]
        dropped += here[spec.headcount:]
    residual = []
    for spec in specs:
        here = kept_at.get(spec.key)
        if here is None:  # nobody stays (a new post): all of it is open, as it is
            if spec.headcount > 0:
                residual.append(spec)
            continue
        left = spec.headcount - len(here)
        if left > 0:
            residual.append(spec.resized(left, spec.leader_required and not any(o.leader_part for o in here)))
    return kept_at, dropped, residual


def plan_posts(plan: Plan, level: str, sites: Sequence[Site]) -> list[PostSpec]:
    """Return the posts ``plan`` demands at ``level`` in the communities ``sites``, placed.

    ``per: grid`` posts go to every grid; ``per: place`` to every named place of the post's
    location kind; ``per: community`` to the first such place, else the community's centre.

    >>> plan = Plan("flood", "防汛", "Flood", (PostDef("watch", "screening", "巡查", "Watch", "grid", "grid",
    ...             {"I": 2}),), {"I": 10}, {"I": 30})
    >>> site = Site("C1", "S1", 30.0, 120.0, grids=(("C1-01", "第1网格", 30.001, 120.0),))
    >>> [(p.key, p.headcount) for p in plan_posts(plan, "I", [site])]
    [('C1/watch@C1-01', 2)]
    """
    out: list[PostSpec] = []
    posts = plan.posts_at(level)
    for site in sites:
        for post in posts:
            headcount = post.headcount_at(level, len(site.grids))
            if post.per == "grid" and site.grids:
                places = [(code, name, lat, lon) for code, name, lat, lon in site.grids]
            else:
                named = [(code, name, lat, lon) for code, kind, name, lat, lon in site.places if kind == post.location]
                if post.per == "place" and named:
                    places = named
                elif named:
                    places = named[:1]
                else:
                    places = [(None, "社区党群服务中心", site.lat, site.lon)]
            for code, name, lat, lon in places:
                key = f"{site.community}/{post.code}" + (f"@{code}" if code and post.per != "community" else "")
                out.append(PostSpec(key, site.community, site.street, post.code, post.group, post.zh, post.en, code,
                                    name, lat, lon, headcount, post.skills_all, post.skills_any, post.leader_required,
                                    post.priority, post.shift_hours))
    return out


def _default_dir():
    return resources.files("mobilize") / "data" / "plans"


def load_plans(directory: Path | None = None, *, skills: SkillVocabulary,
               workgroups: WorkGroupTemplate) -> dict[str, Plan]:
    """Return every plan of ``directory`` by hazard; raise :class:`InvalidInput` listing every mistake."""
    root = Path(directory) if directory is not None else _default_dir()
    problems: list[Problem] = []
    plans: dict[str, Plan] = {}
    files = sorted(p for p in root.iterdir() if p.name.endswith((".yaml", ".yml")))
    if not files:
        raise InvalidInput("没有找到预案文件", "No plan files found",
                           [Problem("目录中没有 .yaml 预案", "the folder holds no .yaml plans", file=str(root))])
    for path in files:
        try:
            doc = YamlDoc(path.name, path.read_text(encoding="utf-8"))
        except InvalidInput as exc:
            problems += exc.problems
            continue
        plan = _parse(doc, skills, workgroups, problems)
        if plan is None:
            continue
        if plan.hazard in plans:
            problems.append(doc.problem(("hazard",), f"灾种 {plan.hazard} 重复定义", f"hazard {plan.hazard} is defined twice"))
            continue
        plans[plan.hazard] = plan
    if problems:
        raise InvalidInput("预案文件有误", "The plan files are invalid", problems)
    return plans


def _parse(doc: YamlDoc, skills: SkillVocabulary, workgroups: WorkGroupTemplate,
           problems: list[Problem]) -> Plan | None:
    data = doc.data
    before = len(problems)
    bad = lambda path, zh, en: problems.append(doc.problem(path, zh, en))  # noqa: E731
    if not isinstance(data, dict):
        bad((), "预案须为映射（键: 值）", "a plan must be a mapping (key: value)")
        return None
    for key in ("hazard", "zh", "posts", "deadlines"):
        if key not in data:
            bad((), f"缺少 {key}", f"`{key}` is missing")
    unknown = set(data) - {"hazard", "zh", "en", "posts", "deadlines"}
    for key in sorted(unknown):
        bad((key,), f"未知字段 {key}", f"unknown field `{key}`")
    deadlines: dict[str, dict[str, int]] = {}
    for kind in ("acknowledge", "arrive"):
        raw = (data.get("deadlines") or {}).get(kind) if isinstance(data.get("deadlines"), dict) else None
        deadlines[kind] = _per_level(doc, ("deadlines", kind), raw, problems, minimum=1, require_all=True)
    posts: list[PostDef] = []
    codes: set[str] = set()
    raw_posts = data.get("posts")
    if "posts" in data and (not isinstance(raw_posts, list) or not raw_posts):
        bad(("posts",), "posts 须为非空列表", "`posts` must be a non-empty list")
        raw_posts = []
    wartime = {g.code for g in workgroups.wartime}
    for i, raw in enumerate(raw_posts or []):
        code = raw.get("code") if isinstance(raw, dict) else None
        if code is not None and code in codes:
            bad(("posts", i, "code"), f"岗位编码 {code} 重复", f"duplicate post code {code}")
        codes.add(code)
        post = _parse_post(doc, ("posts", i), raw, skills, wartime, problems)
        if post is not None:
            posts.append(post)
    if len(problems) > before:
        return None
    staffed = {lvl: sum(p.headcount.get(lvl, 0) for p in posts) for lvl in LEVELS}
    for hi, lo in zip(LEVELS, LEVELS[1:]):
        if staffed[hi] < staffed[lo]:
            bad(("posts",), f"{LEVEL_ZH[hi]}响应的人数（{staffed[hi]}）少于{LEVEL_ZH[lo]}（{staffed[lo]}）",
                f"level {hi} staffs fewer people ({staffed[hi]}) than level {lo} ({staffed[lo]})")
    groups_used = {p.group for p in posts}
    if groups_used != wartime:
        missing = ", ".join(sorted(wartime - groups_used))
        bad(("posts",), f"以下战时工作组没有岗位：{missing}", f"these wartime groups have no post: {missing}")
    if len(problems) > before:
        return None
    return Plan(str(data["hazard"]), str(data["zh"]), str(data.get("en", data["hazard"])), tuple(posts),
                deadlines["acknowledge"], deadlines["arrive"], doc.name)


def _per_level(doc: YamlDoc, path: tuple, raw: Any, problems: list[Problem], *, minimum: int,
               require_all: bool) -> dict[str, int]:
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = {lvl: raw for lvl in LEVELS}
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "须为整数或按级别的映射，如 {I: 4, II: 3}", "must be a number or a per-level "
                                    "mapping such as {I: 4, II: 3}"))
        return {}
    out: dict[str, int] = {}
    for key, value in raw.items():
        level = parse_level(str(key))
        if level is None:
            problems.append(doc.problem((*path, key), f"未知响应级别 {key}（应为 I–IV）", f"unknown level {key} (use I–IV)"))
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            problems.append(doc.problem((*path, key), f"须为不小于 {minimum} 的整数", f"must be an integer ≥ {minimum}"))
            continue
        out[level] = value
    if require_all and not problems and set(out) != set(LEVELS):
        missing = ", ".join(lvl for lvl in LEVELS if lvl not in out)
        problems.append(doc.problem(path, f"缺少级别 {missing}", f"levels missing: {missing}"))
    return out


_POST_KEYS = {"code", "group", "zh", "en", "location", "per", "headcount", "add_per_grids", "skills_all", "skills_any",
              "leader_required", "priority", "shift_hours"}


def _parse_post(doc: YamlDoc, path: tuple, raw: Any, skills: SkillVocabulary, wartime: set[str],
                problems: list[Problem]) -> PostDef | None:
    before = len(problems)
    bad = lambda sub, zh, en: problems.append(doc.problem((*path, *sub), zh, en))  # noqa: E731
    if not isinstance(raw, dict):
        bad((), "岗位须为映射", "a post must be a mapping")
        return None
    for key in sorted(set(raw) - _POST_KEYS):
        bad((key,), f"未知字段 {key}", f"unknown field `{key}`")
    for key in ("code", "group", "zh", "location", "per", "headcount"):
        if key not in raw:
            bad((), f"缺少 {key}", f"`{key}` is missing")
    if raw.get("group") is not None and raw.get("group") not in wartime:
        bad(("group",), f"未知战时工作组 {raw.get('group')}", f"unknown wartime group {raw.get('group')}")
    if raw.get("per") is not None and raw.get("per") not in PER:
        bad(("per",), "per 须为 community、grid 或 place", "`per` must be community, grid or place")
    headcount = _per_level(doc, (*path, "headcount"), raw.get("headcount"), problems, minimum=0, require_all=False) \
        if "headcount" in raw else {}
    if "headcount" in raw and not any(headcount.values()) and len(problems) == before:
        bad(("headcount",), "至少一个级别的人数须大于 0", "at least one level must staff the post")
    for hi, lo in zip(LEVELS, LEVELS[1:]):
        if headcount.get(hi, 0) < headcount.get(lo, 0):
            bad(("headcount", lo), f"{LEVEL_ZH[lo]}人数多于更严重的{LEVEL_ZH[hi]}", f"level {lo} needs more than the more severe level {hi}")
            break
    add_every = add = 0
    if "add_per_grids" in raw:
        spec = raw["add_per_grids"]
        if (not isinstance(spec, dict) or not isinstance(spec.get("every"), int) or not isinstance(spec.get("add"), int)
                or spec["every"] < 1 or spec["add"] < 0):
            bad(("add_per_grids",), "须为 {every: 正整数, add: 非负整数}", "must be {every: positive int, add: int ≥ 0}")
        else:
            add_every, add = spec["every"], spec["add"]
    codes: dict[str, frozenset[str]] = {}
    for key in ("skills_all", "skills_any"):
        words = raw.get(key, []) or []
        if not isinstance(words, list):
            bad((key,), "须为技能列表", "must be a list of skills")
            words = []
        resolved = []
        for j, word in enumerate(words):
            code = skills.resolve(str(word))
            if code is None:
                bad((key, j), f"未知技能「{word}」", f"unknown skill '{word}'")
            else:
                resolved.append(code)
        codes[key] = frozenset(resolved)
    priority = raw.get("priority", 3)
    if not isinstance(priority, int) or isinstance(priority, bool) or not 1 <= priority <= 5:
        bad(("priority",), "优先级须为 1（最高）到 5 的整数", "priority must be an integer from 1 (highest) to 5")
    shift = raw.get("shift_hours", 12)
    if not isinstance(shift, int) or isinstance(shift, bool) or not 1 <= shift <= 24:
        bad(("shift_hours",), "班次时长须为 1 到 24 小时", "shift_hours must be 1 to 24")
    leader = raw.get("leader_required", False)
    if not isinstance(leader, bool):
        bad(("leader_required",), "须为 true 或 false", "must be true or false")
    if len(problems) > before:
        return None
    return PostDef(str(raw["code"]), str(raw["group"]), str(raw["zh"]), str(raw.get("en", raw["code"])),
                   str(raw["location"]), str(raw["per"]), headcount, add_every, add, codes["skills_all"],
                   codes["skills_any"], leader, priority, shift)


