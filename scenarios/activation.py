"""An activation held in memory: what the activation services do with rows, done with plain objects.

Each method is the in-memory twin of one service and calls the same pure core (see
:mod:`scenarios.simulator` for the whole mapping); only persistence, events, links and notifications
are left out. The drill-only injects (illness, road cut, extra posts) act as a person or an operator
would through the same state machine and the same backup search (:mod:`scenarios.injects`); the
temporary branches are kept by :mod:`scenarios.branches`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import numpy as np

from mobilize.activations.writes import demands_of
from mobilize.branches import BranchPlan, Member, form_branches
from mobilize.costs import Person
from mobilize.costs import Post as Demand
from mobilize.errors import Conflict
from mobilize.escalation import (
    default_ladder,
    due_steps,
    mark_fired,
    next_check_at,
    overdue,
)
from mobilize.orders import OrderState, Transition, apply, new_order
from mobilize.plans import Plan, PostSpec, plan_posts
from mobilize.solver import Assignment, solve
from scenarios.backups import BackupSearch
from scenarios.branches import BranchUpkeep
from scenarios.injects import InjectHandlers
from scenarios.metrics import Trace
from scenarios.model import ExtraPosts, PolicySpec
from scenarios.world import World

__all__ = ["MemoryActivation", "OrderRec"]

@dataclass(slots=True)
class OrderRec:
    """One dispatch order: the row's fields the core needs, with its state machine state."""

    id: int
    person: int  # index into the world's people
    post: str
    leader_part: bool
    borrowed: bool
    cost: int
    km: float
    state: OrderState
    check_at: float | None = None  # when the sweeper next looks at it (virtual minutes)
    member: Member | None = None  # its holder as branch formation sees them (None: not a party member)


def _people_of(world: World, borrowing: bool) -> tuple[list[Person], dict[str, list[int]]]:
    """Return the solver's people and who is in each street, per borrowing policy (kept with the world).

    No borrowing (街道统筹 off): each community is a street of its own, so the solver builds no borrow
    edge at all (as pins.suggest_pins does) — exact, and cheaper than a prohibitive cost.
    """
    if borrowing:
        return world.people, world.by_street
    got = world.memo.get("unborrowed")
    if got is None:
        people = [replace(p, street=p.community) for p in world.people]
        by_street: dict[str, list[int]] = {}
        for i, p in enumerate(people):
            by_street.setdefault(p.street, []).append(i)
        got = world.memo["unborrowed"] = (people, by_street)
    return got


class MemoryActivation(InjectHandlers, BranchUpkeep, BackupSearch):
    """One activation of ``world``'s ``scope`` on a virtual clock (minutes after ``t0``).

    ``notify(order, t)`` is called for every new order (the simulator draws the person's answer);
    ``wake(t, order_id)`` asks the simulator's clock to run :meth:`sweep` for an order at ``t``.
    """

    def __init__(self, world: World, plan: Plan, scope: str, level: str, policy: PolicySpec, t0: datetime,
                 trace: Trace, *, notify: Callable[[OrderRec, float], None], wake: Callable[[float, int], None]):
        self.world, self.plan, self.level, self.policy, self.t0, self.trace = world, plan, level, policy, t0, trace
        self._at: tuple[float, datetime] = (0.0, t0)
        self._minutes: dict[datetime, float] = {}
        self._slots: dict[tuple[int, bool], tuple[PostSpec, Demand, int]] = {}  # one-slot demands of backup searches
        self.cost_policy = policy.cost_policy()
        self.notify, self.wake = notify, wake
        self.sites = [world.sites[c] for c in world.communities_under(scope)]
        self.streets = sorted({s.street for s in self.sites})
        self.people, self.by_street = _people_of(world, policy.borrowing)
        self.scope_people = sorted(i for s in self.streets for i in world.by_street.get(s, ()))
        self.available = world.available_at(t0)
        self.orders: list[OrderRec] = []
        self.open_of: dict[int, int] = {}  # person -> open order id
        self.holders: dict[str, list[int]] = {}  # post key -> open order ids
        self.specs: dict[str, PostSpec] = {}
        self.extras: list[PostSpec] = []
        self.said_no: set[int] = set()  # declined or reassigned in this activation: not asked again
        self.out: set[int] = set()  # fell ill
        self.cut: set[str] = set()
        self.confined: dict[int, str] = {}  # person -> the cut grid they live in
        self.confined_at = np.full(len(world.people), -1, dtype=np.int64)  # the same: number of the cut grid
        self.cut_number: dict[str, int] = {}  # cut grid -> its number
        self.branches: dict[str, BranchPlan] = {}
        self.dirty: set[str] = set()
        self.party: dict[str, dict[int, Member]] = {}  # community -> open order id -> its party member
        self.ladder = default_ladder(self.deadlines()[0])
        self.ended = False
        self.posts_of: dict[str, list[str]] = {}  # community -> post keys
        self.arrivals: set[str] = set()  # communities with new arrivals since the last settle
        self._unblock()

    def _unblock(self) -> None:
        """Recompute who may be asked as a backup: available, not ill, not holding an order, never said no."""
        self.blocked = np.array([not self._ok(i) or i in self.open_of or i in self.said_no
                                 for i in range(len(self.people))], dtype=bool)

    # --- clock and bookkeeping ---------------------------------------------------------------------

    def at(self, t: float) -> datetime:
        if t != self._at[0]:  # events come in time order, several at one moment
            self._at = (t, self.t0 + timedelta(minutes=t))
        return self._at[1]

    def minutes(self, when: datetime) -> float:
        m = self._minutes.get(when)
        if m is None:  # deadlines repeat: orders made at one moment share them
            m = self._minutes[when] = (when - self.t0).total_seconds() / 60.0
        return m

    def deadlines(self) -> tuple[int, int]:
        return self.policy.deadlines(self.plan, self.level)

    def _street(self, spec: PostSpec) -> str:
        return spec.street if self.policy.borrowing else spec.community

    def _demand(self, spec: PostSpec) -> Demand:
        d = demands_of([spec])[0]
        return d if self.policy.borrowing else replace(d, street=spec.community)

    def _set_specs(self, specs: list[PostSpec], t: float) -> None:
        new = {s.key: s for s in specs}
        for key, spec in self.specs.items():
            if key not in new:
                self.trace.demand(t, spec, 0)
        for key, spec in new.items():
            old = self.specs.get(key)
            if old is None or old.headcount != spec.headcount:
                self.trace.demand(t, spec, spec.headcount)
        self.specs = new
        self.posts_of = {}
        for key in sorted(new):
            self.posts_of.setdefault(new[key].community, []).append(key)

    def _apply(self, rec: OrderRec, action: str, actor: str, t: float, reason: str | None = None,
               note: str | None = None) -> Transition:
        """Apply one action through the state machine and keep holders, trace and sweeper check in step."""
        before = rec.state
        tr = apply(before, action, actor=actor, at=self.at(t), reason=reason, note=note)
        if tr.noop:
            return tr
        rec.state = tr.order
        self.trace.order(t, self.specs.get(rec.post), rec.post, before, rec.state, self.world.people[rec.person])
        party = rec.member is not None  # only party members make up branches
        if before.is_open and not rec.state.is_open:
            self.open_of.pop(rec.person, None)
            self.holders[rec.post].remove(rec.id)
            if party:
                del self.party[rec.member.community][rec.id]
                self.dirty.add(rec.member.community)
            i = rec.person
            self.blocked[i] = not self._ok(i) or i in self.said_no or rec.state.status in ("declined", "reassigned")
        if party and rec.state.arrived_at is not None and before.arrived_at is None:
            self.arrivals.add(rec.post.split("/", 1)[0])
        self._reschedule(rec, t)
        return tr

    def _reschedule(self, rec: OrderRec, t: float) -> None:
        when = next_check_at(rec.state, self.ladder)
        if when is None:
            rec.check_at = None
            return
        m = max(self.minutes(when), t)
        if m != rec.check_at:
            rec.check_at = m
            self.wake(m, rec.id)

    def _dispatch(self, assignments, t: float) -> list[OrderRec]:
        """Create one notified order per assignment (``writes.insert_orders``) and tell the simulator."""
        ack, arrive = self.deadlines()
        # Orders made at one moment start in one and the same (immutable) state: made once.
        fresh = new_order(self.at(t), ack, arrive) if assignments else None
        made = []
        for a in assignments:
            i = self.world.index[a.person]
            spec = self.specs[a.post]
            person = self.world.people[i]
            km = a.travel_minutes / self.cost_policy.minutes_per_km  # the solver's own travel distance
            rec = OrderRec(len(self.orders), i, a.post, a.leader_part, a.borrowed, int(a.cost), km, fresh)
            self.orders.append(rec)
            self.open_of[i] = rec.id
            self.blocked[i] = True
            self.holders.setdefault(a.post, []).append(rec.id)
            self.trace.order(t, spec, a.post, None, rec.state, person)
            self.trace.count("notified")
            if a.borrowed:
                self.trace.count("borrowed")
            self._reschedule(rec, t)
            if person.party_member:
                rec.member = Member(person.id, spec.community, spec.group, True, person.leader,
                                    spec.group == "command", a.post, spec.lat, spec.lon)
                self.party.setdefault(spec.community, {})[rec.id] = rec.member
                self.dirty.add(spec.community)
            made.append(rec)
        for rec in made:
            self.notify(rec, t)
        return made

    # --- eligibility (load_candidates) and the solve ------------------------------------------------

    def _said_no(self, i: int) -> None:
        self.said_no.add(i)
        self.blocked[i] = True

    def _ok(self, i: int) -> bool:
        return self.available[i] and i not in self.out

    def _reaches(self, i: int, spec: PostSpec) -> bool:
        grid = self.world.grid_of_post(spec.site_code)
        inside = grid if grid in self.cut else None
        return self.confined.get(i) == inside

    def _solve(self, people: list[int], specs: list[PostSpec]) -> list[Assignment]:
        """Return the optimal assignment of ``people`` to ``specs`` (``mobilize.solver.solve``).

        A road cut splits the problem exactly: each cut grid's posts with its own people, the rest
        with everyone else — one :func:`solve` per part.
        """
        if not specs:
            return []
        parts: dict[str | None, tuple[list[int], list[PostSpec]]] = {None: ([], [])}
        for g in sorted(self.cut):
            parts[g] = ([], [])
        for spec in specs:
            grid = self.world.grid_of_post(spec.site_code)
            parts[grid if grid in self.cut else None][1].append(spec)
        for i in people:
            parts[self.confined.get(i)][0].append(i)
        out: list[Assignment] = []
        for key in sorted(parts, key=lambda k: (k is not None, k or "")):
            who, posts = parts[key]
            if posts:
                sol = solve([self.people[i] for i in who], [self._demand(s) for s in posts], self.cost_policy)
                out.extend(sol.assignments)
        return out

    # --- services ------------------------------------------------------------------------------------

    def activate(self, t: float, extras: list[ExtraPosts] = ()) -> list[OrderRec]:
        """One-key activation (``service.activate``): place the posts, solve, dispatch, form branches."""
        self._unblock()
        for inject in extras:
            self.extras += self._extra_specs(inject)
        self._set_specs(self._plan_posts(self.level) + self.extras, t)
        people = [i for i in self.scope_people if self._ok(i)]
        key = ("solve", tuple(s.community for s in self.sites), self.level, self.policy,
               tuple(sorted(self.out)), tuple(sorted(self.cut)), tuple(s.key for s in self.extras), self.t0)
        solves = self.world.memo.setdefault("solves", {})  # kept with the world: never another world's answer
        assignments = solves.get(key)
        if assignments is None:  # the same inputs give the same optimum: solve once per world and process
            assignments = self._solve(people, list(self.specs.values()))
            if len(solves) > 8:
                solves.clear()
            solves[key] = assignments
        made = self._dispatch(assignments, t)
        self.branches = self._split(form_branches(self._members(self.sites_codes())))
        self.dirty.clear()
        return made

    def _plan_posts(self, level: str) -> list[PostSpec]:
        """Return ``plans.plan_posts`` of the scope's sites at ``level`` (the same every run: kept with the world)."""
        key = ("posts", id(self.plan), level, tuple(s.community for s in self.sites))
        got = self.world.memo.get(key)
        if got is None or got[0] is not self.plan:
            got = self.world.memo[key] = (self.plan, tuple(plan_posts(self.plan, level, self.sites)))
        return list(got[1])

    def answer(self, rec: OrderRec, action: str, t: float, reason: str | None = None) -> None:
        """A person's answer from the phone (``phone.act``): a decline releases them and finds a backup."""
        if self.ended:
            return
        try:
            tr = self._apply(rec, action, "person", t, reason=reason)
        except Conflict:
            if rec.state.status == "reassigned" and action in ("acknowledge", "decline"):
                self.trace.count("late_after_reassign")
            return
        if tr.late:
            self.trace.count("late_answers")
        if not tr.noop and tr.order.status == "declined":
            self.trace.count("declined")
            self._said_no(rec.person)
            self.find_backup(rec, t)

    def sweep(self, order_id: int, t: float) -> None:
        """The sweeper's work on one due order (``sweeper._one``): timeout, ladder steps, reassignment."""
        rec = self.orders[order_id]
        if rec.check_at != t or self.ended:
            return  # superseded by a later schedule
        rec.check_at = None
        now = self.at(t)
        missed = overdue(rec.state, now)
        if missed:
            tr = self._apply(rec, missed, "system", t)
            if not tr.stale:
                self.trace.count("escalated_" + ("ack" if missed == "timeout_ack" else "arrive"))
        for step in due_steps(rec.state, self.ladder, now):
            rec.state = mark_fired(rec.state, step)
            self.trace.count("step_" + step.name)
            if step.name == "reassign_post":
                self._apply(rec, "reassign", "system", t, reason="no_answer")
                self.trace.count("reassigned")
                self._said_no(rec.person)
                if self.find_backup(rec, t) is None:
                    self.trace.count("step_tell_secretary_and_command")
                return
        self._reschedule(rec, t)

    def end(self, t: float) -> None:
        """Switch back (``service.end``): release every open order."""
        for oid in sorted(self.open_of.values()):
            self._apply(self.orders[oid], "release", "system", t, reason="activation_ended")
        self.ended = True
