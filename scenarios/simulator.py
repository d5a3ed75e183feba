"""The drill simulator (推演): a discrete-event run of one scenario on a virtual clock, seeded.

A run replays what the product does after the key press, through the product's own pure core — no
parallel re-implementation that could drift. Each event goes through the function the live service
calls; the service adds only persistence (rows, compare-and-set writes), events, phone links,
notifications and the audit log:

=================================  ================================================  ===========================
drill event                        pure core called (in :mod:`scenarios.activation`)  live service doing the same
=================================  ================================================  ===========================
key press at T+0                   ``plans.plan_posts`` → ``solver.solve`` →          ``activations.service.activate``
                                   ``orders.new_order`` per assignment →
                                   ``branches.form_branches``
person answers / leaves / arrives  ``orders.apply`` (acknowledge, decline,            ``activations.phone.act``
                                   en_route, arrive; late answers from escalated)
decline                            ``orders.apply`` → backup: ``solver.solve`` of    ``phone._apply_and_follow`` →
                                   one slot over the post's street, minus people     ``dispatch.find_backup``
                                   who said no or were replaced
a deadline passes                  ``escalation.overdue`` → ``orders.apply``          ``activations.sweeper.sweep``
                                   (timeout) → ``escalation.due_steps`` /
                                   ``mark_fired`` / ``next_check_at``; the
                                   ``reassign_post`` step → ``orders.apply``
                                   (reassign) → the backup search above
level raised or lowered            ``plan_posts`` → holders kept as the service      ``activations.levels.change_level``
                                   keeps them → ``solve`` of the residual slots →
                                   ``apply(cancel)`` for dropped holders →
                                   ``form_branches``
members change                     ``branches.repair_branches`` per community         (not yet called by a service)
end                                ``orders.apply(release)`` for every open order    ``activations.service.end``
illness (inject)                   ``apply(decline, reason=ill)``, or an operator's   ``operator_actions.act_on_order``
                                   ``apply(reassign)`` once at the post → backup
road cut (inject)                  operator ``apply(cancel, reason=road_cut)`` for     ``operator_actions.act_on_order``
                                   holders who can no longer get there → backup;
                                   solves split exactly by who can reach what
extra posts (inject)               ``plan_posts`` at the named place → ``solve``      (level raise path)
=================================  ================================================  ===========================

Who answers, when, how fast they travel and whose phone fails comes from the behaviour model
(:mod:`scenarios.behaviour`), drawn from each person's own random stream: a run is a function of the
scenario and its seed only. Two simplifications: deadlines and the ladder follow the activation's
current level as the sweeper does; an answer arriving after a post went to someone else is counted
(``late_after_reassign``) and otherwise dropped, as the phone page's 409 drops it.
"""

from __future__ import annotations

import heapq
import random
from typing import Any

from scenarios.activation import MemoryActivation, OrderRec
from scenarios.behaviour import person_stream
from scenarios.metrics import Trace, summarize
from scenarios.model import (
    ExtraPosts,
    Illness,
    LevelChange,
    RoadCut,
    Scenario,
    Variant,
    default_plans,
)
from scenarios.world import World, check_codes, world_for

__all__ = ["Drill", "prepare", "simulate"]

_INJECT, _CHECK, _ANSWER, _EN_ROUTE, _ARRIVE, _END = range(6)


class Drill:
    """One run of a scenario for one variant (roster and policy) and one seed."""

    def __init__(self, scenario: Scenario, seed: int, variant: Variant | None = None, world: World | None = None):
        self.scenario, self.seed = scenario, seed
        self.variant = variant or scenario.baseline
        self.plan = default_plans()[scenario.hazard]
        self.world = world or world_for(self.variant.roster, scenario, self.plan)
        self.behaviour = scenario.behaviour
        self.trace = Trace()
        self.heap: list[tuple[float, int, int, Any, Any]] = []
        self.seq = 0
        self.streams: dict[int, random.Random] = {}
        self.phone_ok: dict[int, bool] = {}
        self.no_signal = set(self.behaviour.no_signal)
        self.started = False
        level = scenario.level
        for inject in scenario.injects:
            if inject.at == 0 and isinstance(inject, LevelChange):
                level = inject.level
        self.activation = MemoryActivation(self.world, self.plan, scenario.scope, level, self.variant.policy,
                                           scenario.start, self.trace, notify=self._notified, wake=self._wake)

    def _push(self, t: float, kind: int, a: Any = None, b: Any = None) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, a, b))

    def _wake(self, t: float, order_id: int) -> None:
        self._push(t, _CHECK, order_id)

    def _notified(self, rec: OrderRec, t: float) -> None:
        """Draw what the person will do with this notification and put it on the clock."""
        i = rec.person
        rng = self.streams.get(i)
        if rng is None:
            rng = self.streams[i] = person_stream(self.seed, i)
            self.phone_ok[i] = rng.random() >= self.behaviour.phone_failure and self.world.grid[i] not in self.no_signal
        r = self.behaviour.respond(rng, self.world.kind[i], rec.km, self.phone_ok[i])
        if r.answer_after is not None:
            self._push(t + r.answer_after, _ANSWER, rec.id, "decline" if r.declines else "acknowledge")
        if r.depart_after is not None:
            self._push(t + r.depart_after, _EN_ROUTE, rec.id)
            self._push(t + r.arrive_after, _ARRIVE, rec.id)

    def _ill(self, k: int, inject: Illness) -> list[int]:
        """Return who falls ill: a share of the scope's people of the kind and skill, from the inject's stream."""
        world = self.world
        pool = [i for i in self.activation.scope_people
                if (inject.kind is None or world.kind[i] == inject.kind)
                and (inject.skill is None or inject.skill in world.people[i].skills)]
        n = round(inject.share * len(pool))
        return sorted(random.Random(f"{self.seed}/illness/{k}").sample(pool, n))

    def start(self) -> None:
        """Apply the injects at T+0 (they shape the key press), press the key, and put the rest on the clock."""
        act, scenario = self.activation, self.scenario
        if self.started:
            return
        self.started = True
        at_zero = []
        for k, inject in enumerate(scenario.injects):
            if inject.at > 0:
                self._push(inject.at, _INJECT, k, inject)
            elif isinstance(inject, Illness):
                act.out.update(self._ill(k, inject))
                self.trace.count("ill", len(act.out))
            elif isinstance(inject, RoadCut):
                act.cut_road(inject.grid, 0.0)
            elif isinstance(inject, ExtraPosts):
                at_zero.append(inject)
        act.activate(0.0, at_zero)
        self._push(scenario.end, _END)

    def run(self) -> dict[str, Any]:
        """Return the run's metrics (:func:`scenarios.metrics.summarize`)."""
        act, scenario = self.activation, self.scenario
        self.start()
        minute = 0.0
        while self.heap:
            t, _, kind, a, b = heapq.heappop(self.heap)
            if t >= minute + 1.0 or kind == _END:  # branches are repaired once a minute (formation times stay exact)
                act.settle(t)
                minute = float(int(t))
            if kind == _END:
                break
            if kind == _CHECK:
                act.sweep(a, t)
            elif kind == _ANSWER:
                act.answer(act.orders[a], b, t, reason="away" if b == "decline" else None)
            elif kind == _EN_ROUTE:
                act.answer(act.orders[a], "en_route", t)
            elif kind == _ARRIVE:
                act.answer(act.orders[a], "arrive", t)
            else:
                self._inject(a, b, t)
        summary = summarize(self.trace, scenario.end)
        summary["seed"] = self.seed
        act.end(scenario.end)
        return summary

    def _inject(self, k: int, inject, t: float) -> None:
        act = self.activation
        if isinstance(inject, LevelChange):
            act.change_level(inject.level, t)
        elif isinstance(inject, RoadCut):
            act.cut_road(inject.grid, t)
        elif isinstance(inject, Illness):
            act.fall_ill(self._ill(k, inject), t)
        else:
            act.add_posts(inject, t)


def prepare(scenario: Scenario, variant: Variant | None = None) -> World:
    """Return the variant's world after checking the scenario's codes against it (built once per process)."""
    variant = variant or scenario.baseline
    world = world_for(variant.roster, scenario, default_plans()[scenario.hazard])
    check_codes(scenario, world)
    return world


def simulate(scenario: Scenario, seed: int, variant: Variant | None = None) -> dict[str, Any]:
    """Return the metrics of one seeded run of ``scenario`` (the same seed gives the same numbers).

    >>> from scenarios.model import shipped, load_scenario
    >>> s = load_scenario(shipped()["street_flood"])
    >>> simulate(s, 7)["counts"] == simulate(s, 7)["counts"]
    True
    """
    prepare(scenario, variant)
    return Drill(scenario, seed, variant).run()
