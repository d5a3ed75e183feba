"""How people answer in a drill (行为模型): per member kind, the odds and the timing of every answer.

A scenario's ``behaviour`` section sets, for everyone (``default``) and per member kind (``kinds``):

================  ===========================================================================
``answer``        probability the person answers the notification at all (0–1)
``decline``       probability that an answer is a decline (拒绝) rather than an acknowledgement
``answer_delay``  minutes from the notification to the answer (a distribution, below)
``depart_delay``  minutes from the acknowledgement to leaving home (en route, 在途)
``speed_kmh``     travel speed, km/h (e-bike ≈ 15; walking through water ≈ 3)
``no_show``       probability an acknowledged person never arrives (no-show, 失联)
================  ===========================================================================

and how phones fail: ``phones: {failure: 0.02, no_signal: [<grid code>, …]}`` — a failed phone, or
anyone living in a grid without signal, never sees the notification (the escalation ladder then runs).

A distribution is a number (fixed), or one of ``{fixed: 3}``, ``{uniform: [1, 5]}``,
``{triangular: [1, 3, 10]}`` (low, mode, high), ``{exponential: {mean: 4}}``,
``{normal: {mean: 15, sd: 4}}`` (cut at 0) or ``{lognormal: {median: 4, p90: 15}}``. Each person's
draws come from their own random stream (:func:`person_stream`), so two policies compared on the
same seed meet the same people behaving the same way (common random numbers).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

from mobilize.errors import Problem
from mobilize.yamlfile import YamlDoc
from rosters.vocabulary import MemberKind

__all__ = ["Behaviour", "Dist", "KindBehaviour", "Response", "parse_behaviour", "parse_dist", "person_stream"]

_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


@dataclass(frozen=True, slots=True)
class Dist:
    """A distribution of non-negative minutes (or km/h): ``kind`` and its parameters.

    >>> Dist("fixed", (3.0,)).sample(random.Random(1))
    3.0
    >>> round(Dist("lognormal", (4.0, 15.0)).median(), 6)
    4.0
    """

    kind: str
    params: tuple[float, ...]

    def sample(self, rng: random.Random) -> float:
        """Return one draw (never negative)."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return rng.uniform(p[0], p[1])
        if k == "triangular":
            return rng.triangular(p[0], p[2], p[1])
        if k == "exponential":
            return rng.expovariate(1.0 / p[0]) if p[0] > 0 else 0.0
        if k == "normal":
            return max(0.0, rng.gauss(p[0], p[1]))
        median, p90 = p
        sigma = math.log(p90 / median) / _Z90 if p90 > median else 0.0
        return median * math.exp(rng.gauss(0.0, sigma))

    def median(self) -> float:
        """Return the distribution's median (for the report's plain-language summary)."""
        k, p = self.kind, self.params
        if k == "fixed":
            return p[0]
        if k == "uniform":
            return (p[0] + p[1]) / 2
        if k == "triangular":
            return p[1]
        if k == "exponential":
            return p[0] * math.log(2)
        return p[0]

    def describe(self) -> str:
        names = {"fixed": "", "uniform": "uniform ", "triangular": "triangular ", "exponential": "exponential mean ",
                 "normal": "normal ", "lognormal": "lognormal median/p90 "}
        return names[self.kind] + "/".join(f"{x:g}" for x in self.params)


@dataclass(frozen=True, slots=True)
class KindBehaviour:
    """How one member kind answers (see the module docstring)."""

    answer: float = 0.92
    decline: float = 0.08
    answer_delay: Dist = Dist("lognormal", (4.0, 15.0))
    depart_delay: Dist = Dist("fixed", (5.0,))
    speed_kmh: Dist = Dist("normal", (15.0, 4.0))
    no_show: float = 0.03


@dataclass(frozen=True, slots=True)
class Response:
    """What one person will do with one notification, in minutes after it (None: never).

    ``answer_after`` with ``declines`` says when and how they answer; ``arrive_after`` is counted
    from the notification too (acknowledge + depart + travel), None for a no-show or a decline.
    """

    answer_after: float | None
    declines: bool
    depart_after: float | None
    arrive_after: float | None


@dataclass(frozen=True)
class Behaviour:
    """The behaviour model of a scenario: per member kind, and how phones fail."""

    default: KindBehaviour = KindBehaviour()
    kinds: dict[str, KindBehaviour] = field(default_factory=dict)
    phone_failure: float = 0.0
    no_signal: tuple[str, ...] = ()

    def of(self, kind: str) -> KindBehaviour:
        return self.kinds.get(kind, self.default)

    def respond(self, rng: random.Random, kind: str, km: float, phone_ok: bool) -> Response:
        """Return one person's response to a notification, drawing from their own stream ``rng``.

        The draws are always made in the same order, so a person's answer does not depend on which
        post the solver gave them (only the travel time does).

        >>> b = Behaviour(KindBehaviour(answer=1, decline=0, answer_delay=Dist("fixed", (2.0,)),
        ...                             depart_delay=Dist("fixed", (0.0,)), speed_kmh=Dist("fixed", (15.0,)), no_show=0))
        >>> b.respond(random.Random(1), "volunteer", 1.0, True)
        Response(answer_after=2.0, declines=False, depart_after=2.0, arrive_after=6.0)
        """
        k = self.of(kind)
        answers = rng.random() < k.answer
        declines = rng.random() < k.decline
        delay = k.answer_delay.sample(rng)
        depart = k.depart_delay.sample(rng)
        speed = max(k.speed_kmh.sample(rng), 1.0)
        shows = rng.random() >= k.no_show
        if not phone_ok or not answers:
            return Response(None, False, None, None)
        if declines:
            return Response(delay, True, None, None)
        if not shows:
            return Response(delay, False, None, None)
        return Response(delay, False, delay + depart, delay + depart + km / speed * 60.0)


def person_stream(seed: int, person_index: int, purpose: str = "answers") -> random.Random:
    """Return the random stream of one person in one run (string seeds hash the same in every process)."""
    return random.Random(f"{seed}/{purpose}/{person_index}")


# --- parsing (YAML with line numbers) -------------------------------------------------------------

_PROB = ("answer", "decline", "no_show")
_DISTS = ("answer_delay", "depart_delay", "speed_kmh")
_KIND_KEYS = set(_PROB) | set(_DISTS)


def parse_dist(doc: YamlDoc, path: tuple, raw: Any, problems: list[Problem]) -> Dist | None:
    """Return the distribution written at ``path``; append a problem naming the line otherwise."""
    def bad(zh: str, en: str) -> None:
        problems.append(doc.problem(path, zh, en))

    if isinstance(raw, bool):
        bad("须为数字或分布", "must be a number or a distribution")
        return None
    if isinstance(raw, (int, float)):
        raw = {"fixed": raw}
    if not isinstance(raw, dict) or len(raw) != 1:
        bad("须为数字或一个分布，如 {lognormal: {median: 4, p90: 15}}",
            "must be a number or one distribution such as {lognormal: {median: 4, p90: 15}}")
        return None
    kind, value = next(iter(raw.items()))
    shapes = {"fixed": (), "uniform": 2, "triangular": 3, "exponential": ("mean",), "normal": ("mean", "sd"),
              "lognormal": ("median", "p90")}
    if kind not in shapes:
        problems.append(doc.problem((*path, kind), f"未知分布 {kind}，可选：{'、'.join(shapes)}",
                                    f"unknown distribution {kind}; use one of {', '.join(shapes)}"))
        return None
    shape = shapes[kind]
    if kind == "fixed":
        params = [value]
    elif isinstance(shape, int):
        params = value if isinstance(value, list) and len(value) == shape else None
    else:
        params = [value.get(k) for k in shape] if isinstance(value, dict) and set(value) == set(shape) else None
    if params is None or any(isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0 for x in params):
        want = f"{shape} 个非负数" if isinstance(shape, int) else "、".join(shape) or "一个非负数"
        want_en = f"{shape} numbers ≥ 0" if isinstance(shape, int) else ", ".join(shape) or "a number ≥ 0"
        problems.append(doc.problem((*path, kind), f"{kind} 分布需要 {want}", f"{kind} needs {want_en}"))
        return None
    params = [float(x) for x in params]
    if (kind == "uniform" and params[0] > params[1]) or (kind == "triangular" and not params[0] <= params[1] <= params[2]):
        problems.append(doc.problem((*path, kind), "参数须从小到大", "parameters must not decrease"))
        return None
    if kind == "lognormal" and (params[0] <= 0 or params[1] < params[0]):
        problems.append(doc.problem((*path, kind), "须 0 < median ≤ p90", "needs 0 < median ≤ p90"))
        return None
    return Dist(kind, tuple(params))


def _parse_kind(doc: YamlDoc, path: tuple, raw: Any, base: KindBehaviour, problems: list[Problem]) -> KindBehaviour:
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "须为映射", "must be a mapping"))
        return base
    changes: dict[str, Any] = {}
    for key in sorted(set(raw) - _KIND_KEYS, key=str):
        problems.append(doc.problem((*path, key), f"未知字段 {key}，可选：{'、'.join(sorted(_KIND_KEYS))}",
                                    f"unknown field `{key}`; known: {', '.join(sorted(_KIND_KEYS))}"))
    for key in _PROB:
        if key in raw:
            value = raw[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
                problems.append(doc.problem((*path, key), f"概率须在 0 到 1 之间（现为 {value}）",
                                            f"a probability must be between 0 and 1 (got {value})"))
            else:
                changes[key] = float(value)
    for key in _DISTS:
        if key in raw:
            dist = parse_dist(doc, (*path, key), raw[key], problems)
            if dist is not None:
                changes[key] = dist
    return replace(base, **changes)


def parse_behaviour(doc: YamlDoc, path: tuple, raw: Any, problems: list[Problem]) -> Behaviour:
    """Return the behaviour model written at ``path`` (missing: the defaults); problems name each line."""
    if raw is None:
        return Behaviour()
    if not isinstance(raw, dict):
        problems.append(doc.problem(path, "behaviour 须为映射", "`behaviour` must be a mapping"))
        return Behaviour()
    for key in sorted(set(raw) - {"default", "kinds", "phones"}, key=str):
        problems.append(doc.problem((*path, key), f"未知字段 {key}（可选 default、kinds、phones）",
                                    f"unknown field `{key}` (use default, kinds, phones)"))
    default = _parse_kind(doc, (*path, "default"), raw["default"], KindBehaviour(), problems) \
        if "default" in raw else KindBehaviour()
    kinds: dict[str, KindBehaviour] = {}
    raw_kinds = raw.get("kinds") or {}
    if not isinstance(raw_kinds, dict):
        problems.append(doc.problem((*path, "kinds"), "kinds 须为映射", "`kinds` must be a mapping"))
        raw_kinds = {}
    known = [k.value for k in MemberKind]
    for kind, spec in raw_kinds.items():
        if kind not in known:
            problems.append(doc.problem((*path, "kinds", kind), f"未知人员类别 {kind}，可选：{'、'.join(known)}",
                                        f"unknown member kind {kind}; known: {', '.join(known)}"))
            continue
        kinds[kind] = _parse_kind(doc, (*path, "kinds", kind), spec, default, problems)
    phones = raw.get("phones") or {}
    failure, no_signal = 0.0, ()
    if not isinstance(phones, dict):
        problems.append(doc.problem((*path, "phones"), "phones 须为映射", "`phones` must be a mapping"))
        phones = {}
    for key in sorted(set(phones) - {"failure", "no_signal"}, key=str):
        problems.append(doc.problem((*path, "phones", key), f"未知字段 {key}（可选 failure、no_signal）",
                                    f"unknown field `{key}` (use failure, no_signal)"))
    if "failure" in phones:
        value = phones["failure"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            problems.append(doc.problem((*path, "phones", "failure"), f"概率须在 0 到 1 之间（现为 {value}）",
                                        f"a probability must be between 0 and 1 (got {value})"))
        else:
            failure = float(value)
    if "no_signal" in phones:
        value = phones["no_signal"]
        if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
            problems.append(doc.problem((*path, "phones", "no_signal"), "须为网格编码列表", "must be a list of grid codes"))
        else:
            no_signal = tuple(value)
    return Behaviour(default, {k: kinds[k] for k in sorted(kinds)}, failure, no_signal)
