"""Temporary party branches (临时党支部) of an in-memory activation: members, repair, and when each formed."""

from __future__ import annotations

from mobilize.branches import BranchPlan, Member, repair_branches

__all__ = ["BranchUpkeep"]


class BranchUpkeep:
    """Branch handling of :class:`scenarios.activation.MemoryActivation`, which holds the orders and posts."""

    def sites_codes(self) -> list[str]:
        return [s.community for s in self.sites]

    def _members(self, communities) -> list[Member]:
        """Return the party members holding open orders on posts of ``communities`` (``writes.members_of``).

        Kept as orders open and close (``party``); listed post by post, each post's in order of dispatch.
        """
        out = []
        for c in communities:
            held = self.party.get(c)
            if held:
                out += [m for _, m in sorted(held.items(), key=lambda x: (x[1].post, x[0]))]
        return out

    @staticmethod
    def _split(plan: BranchPlan) -> dict[str, BranchPlan]:
        out: dict[str, list] = {}
        for b in plan.branches:
            out.setdefault(b.community, [[], []])[0].append(b)
        for n in plan.no_branch:
            out.setdefault(n.community, [[], []])[1].append(n)
        return {c: BranchPlan(tuple(bs), tuple(ns)) for c, (bs, ns) in out.items()}

    def settle(self, t: float) -> None:
        """Repair the branches of communities whose members changed, and note branches formed on the ground."""
        if not self.dirty and not self.arrivals:
            return
        for c in sorted(self.dirty):
            previous = self.branches.get(c, BranchPlan((), ()))
            members = self._members([c])
            if {pid for b in previous.branches for pid in b.members} != {m.person for m in members}:
                self.branches[c] = repair_branches(previous, members)
                self.trace.count("branch_repairs")
        for c in sorted(self.dirty | self.arrivals):
            for b in self.branches.get(c, BranchPlan((), ())).branches:
                if self.trace.branch_formed_at.get(b.id) is None:
                    arrived = []
                    for pid in b.members:
                        oid = self.open_of.get(self.world.index[pid])
                        if oid is not None and self.orders[oid].state.arrived_at is not None:
                            arrived.append(self.orders[oid].state.arrived_at)
                    # formed when the third of its current members arrived
                    self.trace.branch_seen(b.id, self.minutes(sorted(arrived)[2]) if len(arrived) >= 3 else None)
        self.dirty.clear()
        self.arrivals.clear()
