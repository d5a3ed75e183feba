"""The drill's injects on an in-memory activation: level change, illness, road cut and extra posts."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from mobilize.branches import form_branches
from mobilize.escalation import default_ladder
from mobilize.plans import LEVELS, Plan, Site, keep_on_level_change, plan_posts
from scenarios.timeline import ExtraPosts

if TYPE_CHECKING:
    from mobilize.plans import PostSpec
    from scenarios.activation import OrderRec

__all__ = ["InjectHandlers"]


class InjectHandlers:
    """The inject handlers of :class:`scenarios.activation.MemoryActivation`, which holds the state they change.

    The drill-only injects act as a person or an operator would, through the same state machine and
    the same backup search.
    """

    def change_level(self, level: str, t: float) -> list[OrderRec]:
        """Raise or lower the level (``levels.change_level``): surviving holders stay, the rest is solved."""
        if level == self.level or self.ended:
            return []
        self.level = level
        self.ladder = default_ladder(self.deadlines()[0])
        specs = self._plan_posts(level) + self.extras
        kept_at, dropped, residual = keep_on_level_change(
            {key: [self.orders[o] for o in self.holders[key]] for key in sorted(self.holders)}, specs)
        kept = [o for here in kept_at.values() for o in here]
        for o in sorted(dropped, key=lambda o: o.id):
            self._apply(o, "cancel", "system", t, reason="level_changed")
            self.trace.count("cancelled")
        self._set_specs(specs, t)
        self.available = self.world.available_at(self.at(t))
        self._unblock()
        kept_people = {o.person for o in kept}
        people = [i for i in self.scope_people if self._ok(i) and i not in kept_people and i not in self.open_of]
        made = self._dispatch(self._solve(people, residual), t)
        self.branches = self._split(form_branches(self._members(self.sites_codes())))
        self.dirty.clear()
        self.trace.count("level_changes")
        return made

    def fall_ill(self, people: list[int], t: float) -> None:
        """People fall ill: their open orders are declined (or, once at the post, reassigned) and backed up."""
        for i in people:
            self.out.add(i)
            self.blocked[i] = True
            self.trace.count("ill")
            oid = self.open_of.get(i)
            if oid is None:
                continue
            rec = self.orders[oid]
            if rec.state.status == "arrived":
                self._apply(rec, "reassign", "operator", t, reason="ill")
            else:
                self._apply(rec, "decline", "person", t, reason="ill")
            self._said_no(i)
            self.find_backup(rec, t)

    def cut_road(self, grid: str, t: float) -> list[str]:
        """A grid becomes unreachable; return the posts whose holders were moved.

        Holders not yet at their post who can no longer reach it (outsiders on the grid's posts, the
        grid's people on posts outside) are stood down by an operator (``cancel``, reason ``road_cut``:
        unlike a decline or a reassignment it does not bar them from other posts), then each freed slot
        goes through the backup search — so the grid's own people can take the grid's posts.
        """
        self.cut.add(grid)
        number = self.cut_number.setdefault(grid, len(self.cut_number))
        for i, g in enumerate(self.world.grid):
            if g == grid:
                self.confined[i] = grid
                self.confined_at[i] = number
        moved = []
        for oid in sorted(self.open_of.values()):
            rec = self.orders[oid]
            if rec.state.status == "arrived" or self._reaches(rec.person, self.specs[rec.post]):
                continue
            self._apply(rec, "cancel", "operator", t, reason="road_cut")
            self.trace.count("moved_by_road_cut")
            moved.append(rec)
        for rec in moved:
            self.find_backup(rec, t)
        return [rec.post for rec in moved]

    def add_posts(self, inject: ExtraPosts, t: float) -> list[OrderRec]:
        """Extra posts at a named place: placed by the plan, solved over who is free (as a level raise)."""
        specs = self._extra_specs(inject)
        self.extras += specs
        self._set_specs(list(self.specs.values()) + specs, t)
        people = [i for i in self.scope_people if self._ok(i) and i not in self.open_of]
        return self._dispatch(self._solve(people, specs), t)

    def _extra_specs(self, inject: ExtraPosts) -> list[PostSpec]:
        site = self.world.sites[inject.community]
        place = next((p for p in site.places if p[0] == inject.place), None)
        if place is None:
            code, name, lat, lon = next(g for g in site.grids if g[0] == inject.place)
            place = (code, "grid", name, lat, lon)
        post = next(p for p in self.plan.posts if p.code == inject.post)
        n = len(self.extras) + 1
        extra = replace(post, code=f"{post.code}+{n}", per="place", location=place[1], add_every=0,
                        headcount={lvl: inject.headcount for lvl in LEVELS})
        one = Plan(self.plan.hazard, self.plan.zh, self.plan.en, (extra,), self.plan.acknowledge_minutes,
                   self.plan.arrive_minutes)
        return plan_posts(one, self.level, [Site(site.community, site.street, site.lat, site.lon, (), (place,))])
