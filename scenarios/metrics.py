"""Drill metrics: what one run recorded (:class:`Trace`), its summary, and statistics across runs.

Words as the report uses them, per slot (岗位名额) of the posts demanded at a moment:

* **assigned 已派单** — an open order holds the slot (notified or further, escalated included);
* **confirmed 已确认** — its holder acknowledged (or went straight to en route / arrival);
* **arrived 已到岗** — its holder reported arrival.

``time_to`` gives, for confirmed and arrived, the first moment (minutes after the key press) at which
50 / 90 / 100 % of the slots demanded at that moment were covered; ``after_change`` the same counted
from the last change of demand (a level change or extra posts), in minutes after it: "after the level
rose to Ⅰ at T+45, 90 % were on site 38 minutes later". ``None`` means never within the scenario. A temporary branch counts as **formed on the ground (到岗成立)** once 3 of its
party members have arrived.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mobilize.orders import OrderState

__all__ = ["SHARES", "PostStat", "Trace", "aggregate", "percentile", "summarize"]

SHARES = (50, 90, 100)
_FIELDS = ("demand", "assigned", "confirmed", "arrived")


@dataclass(slots=True)
class PostStat:
    key: str
    community: str
    group: str
    zh: str
    en: str
    skills: tuple[str, ...]
    priority: int
    headcount: int = 0
    assigned: int = 0
    confirmed: int = 0
    arrived: int = 0
    full_at: float | None = None


@dataclass
class Trace:
    """What one run did, as it happened: per-post counts, a change log by group, counters, branches."""

    posts: dict[str, PostStat] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)
    log: list[tuple[float, int, int, int, int, int]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    branch_formed_at: dict[str, float | None] = field(default_factory=dict)

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n

    def _post(self, spec) -> PostStat:
        stat = self.posts.get(spec.key)
        if stat is None:
            skills = tuple(sorted(spec.skills_all)) or (("|".join(sorted(spec.skills_any)),) if spec.skills_any else ())
            stat = self.posts[spec.key] = PostStat(spec.key, spec.community, spec.group, spec.zh, spec.en, skills,
                                                   spec.priority)
            self.groups.setdefault(spec.group, len(self.groups))
        return stat

    def demand(self, t: float, spec, headcount: int) -> None:
        stat = self._post(spec)
        d = headcount - stat.headcount
        stat.headcount = headcount
        if d:
            self.log.append((t, self.groups[stat.group], d, 0, 0, 0))
        self._full(stat, t)

    def order(self, t: float, spec, key: str, before: OrderState | None, after: OrderState, person) -> None:
        stat = self._post(spec) if spec is not None else self.posts[key]
        h0 = before is not None and before.is_open
        h1 = after.is_open
        p0 = before.progress if h0 else 0
        p1 = after.progress if h1 else 0
        c0, c1, a0, a1 = p0 >= 1, p1 >= 1, p0 == 3, p1 == 3
        dh, dc, da = h1 - h0, c1 - c0, a1 - a0
        if dh or dc or da:
            stat.assigned += dh
            stat.confirmed += dc
            stat.arrived += da
            self.log.append((t, self.groups[stat.group], 0, dh, dc, da))
            self._full(stat, t)

    @staticmethod
    def _full(stat: PostStat, t: float) -> None:
        if stat.full_at is None and stat.headcount > 0 and stat.arrived >= stat.headcount:
            stat.full_at = t

    def branch_seen(self, branch: str, formed_at: float | None) -> None:
        if self.branch_formed_at.get(branch) is None:
            self.branch_formed_at[branch] = formed_at


def _time_to(log: np.ndarray, column: int, last_change: float) -> dict[str, float | None]:
    """Return the first moment (≥ the last change of demand) each share of demand was covered."""
    out: dict[str, float | None] = {str(s): None for s in SHARES}
    if not len(log):
        return out
    t = log[:, 0]
    demand = np.cumsum(log[:, 2])
    have = np.cumsum(log[:, column])
    last_of_time = np.append(t[1:] != t[:-1], True)  # the state after every change at that moment
    ok = last_of_time & (t >= last_change) & (demand > 0)
    for share in SHARES:
        hit = np.flatnonzero(ok & (have * 100 >= demand * share))
        out[str(share)] = float(t[hit[0]]) - last_change if len(hit) else None
    return out


def summarize(trace: Trace, end: float, *, points: int = 121) -> dict[str, Any]:
    """Return one run's metrics (plain JSON data), read at the end of the scenario before switching back."""
    log = np.array(trace.log, dtype=float).reshape(-1, 6)
    demand_t = log[log[:, 2] != 0, 0]
    last_change = float(demand_t.max()) if len(demand_t) else 0.0
    grid = np.linspace(0.0, end, points)
    at = np.searchsorted(log[:, 0], grid, side="right") - 1
    series: dict[str, Any] = {"t": [round(float(x), 2) for x in grid]}
    groups: dict[str, dict[str, list[int]]] = {}
    for name, gi in trace.groups.items():
        rows = log[:, 1] == gi
        groups[name] = {}
        for k, f in enumerate(_FIELDS):
            col = np.cumsum(np.where(rows, log[:, 2 + k], 0))
            groups[name][f] = np.where(at >= 0, col[np.maximum(at, 0)], 0).astype(int).tolist()
    for k, f in enumerate(_FIELDS):
        col = np.cumsum(log[:, 2 + k])
        series[f] = np.where(at >= 0, col[np.maximum(at, 0)], 0).astype(int).tolist()
    by_skill: Counter = Counter()
    by_community: Counter = Counter()
    posts, names = {}, {}
    for key, s in trace.posts.items():
        if s.headcount <= 0:
            continue
        missing = s.headcount - s.assigned
        if missing > 0:
            for skill in s.skills or ("—",):
                by_skill[skill] += missing
            by_community[s.community] += missing
        posts[key] = [s.headcount, s.assigned, s.confirmed, s.arrived, s.full_at]
        names[key] = [s.zh, s.en, s.community, s.group, list(s.skills), s.priority]
    slots = sum(p[0] for p in posts.values())
    return {
        "slots": slots,
        "assigned": sum(p[1] for p in posts.values()),
        "confirmed": sum(p[2] for p in posts.values()),
        "arrived": sum(p[3] for p in posts.values()),
        "time_to": {"confirmed": _time_to(log, 4, 0.0), "arrived": _time_to(log, 5, 0.0)},
        "after_change": {"confirmed": _time_to(log, 4, last_change), "arrived": _time_to(log, 5, last_change)},
        "last_demand_change": last_change,
        "series": series,
        "groups": groups,
        "posts": posts,
        "post_names": names,
        "short_by_skill": dict(sorted(by_skill.items())),
        "short_by_community": dict(sorted(by_community.items())),
        "counts": dict(sorted(trace.counts.items())),
        "branches": dict(sorted(trace.branch_formed_at.items())),
    }


# --- across runs -----------------------------------------------------------------------------------

def percentile(values: list[float | None], p: float) -> float | None:
    """Return the ``p``-th percentile (linear between ranks); ``None`` (never) ranks above every number.

    >>> percentile([1, 2, 3, 4], 50), percentile([1, None, None], 90), percentile([], 50)
    (2.5, None, None)
    """
    if not values:
        return None
    xs = sorted(math.inf if v is None else float(v) for v in values)
    pos = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(pos), math.ceil(pos)
    a, b = xs[lo], xs[hi]
    if math.isinf(b) and pos > lo:
        return None
    value = a if lo == hi or math.isinf(b) else a + (b - a) * (pos - lo)
    return None if math.isinf(value) else round(value, 3)


def stats(values: list[float | None]) -> dict[str, Any]:
    """Return mean (of the runs that got there), p10/p50/p90, min, max and the share of runs that got there."""
    finite = [float(v) for v in values if v is not None]
    return {"mean": round(sum(finite) / len(finite), 3) if finite else None,
            "p10": percentile(values, 10), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "min": min(finite) if finite else None, "max": max(finite) if len(finite) == len(values) and finite else None,
            "reached": round(len(finite) / len(values), 4) if values else 0.0}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return statistics across runs: time-to shares, mean curves, shortages, counters, posts, branches."""
    n = len(runs)
    out: dict[str, Any] = {"runs": n}
    for key in ("time_to", "after_change"):
        out[key] = {kind: {s: stats([r[key][kind][s] for r in runs]) for s in map(str, SHARES)}
                    for kind in ("confirmed", "arrived")}
    out["last_demand_change"] = stats([r["last_demand_change"] for r in runs])
    for f in ("slots", "assigned", "confirmed", "arrived"):
        out[f] = stats([r[f] for r in runs])
    out["fill_rate"] = stats([r["assigned"] / r["slots"] if r["slots"] else 1.0 for r in runs])
    out["arrive_rate"] = stats([r["arrived"] / r["slots"] if r["slots"] else 1.0 for r in runs])
    t = runs[0]["series"]["t"]
    series = {"t": t}
    for f in _FIELDS:
        arr = np.array([r["series"][f] for r in runs], dtype=float)
        series[f] = np.round(arr.mean(axis=0), 2).tolist()
        series[f + "_p10"] = np.round(np.percentile(arr, 10, axis=0), 2).tolist()
        series[f + "_p90"] = np.round(np.percentile(arr, 90, axis=0), 2).tolist()
    out["series"] = series
    group_names = sorted({g for r in runs for g in r["groups"]})
    out["groups"] = {}
    for g in group_names:
        entry = {}
        for f in _FIELDS:
            arr = np.array([r["groups"].get(g, {}).get(f, [0] * len(t)) for r in runs], dtype=float)
            entry[f] = np.round(arr.mean(axis=0), 2).tolist()
        out["groups"][g] = entry
    for key in ("short_by_skill", "short_by_community"):
        names = sorted({k for r in runs for k in r[key]})
        out[key] = {k: round(sum(r[key].get(k, 0) for r in runs) / n, 3) for k in names}
    names = sorted({k for r in runs for k in r["counts"]})
    out["counts"] = {k: stats([r["counts"].get(k, 0) for r in runs]) for k in names}
    posts: dict[str, dict[str, Any]] = {}
    keys = sorted({k for r in runs for k in r["posts"]})
    for k in keys:
        rows = [r["posts"].get(k) for r in runs]
        rows = [x for x in rows if x is not None]
        posts[k] = {"headcount": round(sum(x[0] for x in rows) / len(rows), 2),
                    "assigned": round(sum(x[1] for x in rows) / len(rows), 2),
                    "arrived": round(sum(x[3] for x in rows) / len(rows), 2),
                    "never_full": round(sum(1 for x in rows if x[4] is None) / len(rows), 4),
                    "never_staffed": round(sum(1 for x in rows if x[1] == 0) / len(rows), 4),
                    "full_at_p50": percentile([x[4] for x in rows], 50)}
    out["posts"] = posts
    names: dict[str, Any] = {}
    for r in runs:
        names.update(r.get("post_names", {}))
    out["post_names"] = names
    branch_ids = sorted({b for r in runs for b in r["branches"]})
    out["branches"] = {b: {"formed": round(sum(1 for r in runs if r["branches"].get(b) is not None) / n, 4),
                           "p50": percentile([r["branches"].get(b) for r in runs], 50),
                           "p90": percentile([r["branches"].get(b) for r in runs], 90)} for b in branch_ids}
    all_times = [v for r in runs for v in r["branches"].values()]
    out["branch_time"] = stats(all_times)
    out["branch_count"] = stats([len(r["branches"]) for r in runs])
    return out
