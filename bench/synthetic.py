"""A seeded synthetic city of plain solver inputs (people and posts), for benchmarks.

``make_city(seed=7)`` gives 300 communities in 30 streets, about 44,000 people and 37,000 slots.
Plans scale with a community's size and rosters vary around it, so a few communities are short
and some lack a skill (medics, electricians);
about 3 % of people are ineligible (on leave, already deployed); 60 % are pre-assigned to a post of
their community (平时编组); each community has one or two commando squads, most of them pre-assigned
together. Skill shares follow ``rosters/data/skills.yaml``.
"""

from __future__ import annotations

import numpy as np

from mobilize.costs import Person, Post

__all__ = ["make_city", "SKILL_SHARE"]

SKILL_SHARE = {
    "medical": 0.08, "driving": 0.30, "electrician": 0.05, "boat": 0.02, "rescue": 0.07,
    "logistics": 0.12, "publicity": 0.10, "elderly_care": 0.06, "it": 0.08, "psychology": 0.03,
    "firefighting": 0.04, "security": 0.08, "construction": 0.05, "cooking": 0.05, "translation": 0.02,
}

# (wartime group, headcount, skills_all, skills_any, leader_required, priority) per post kind;
# a community of average size holds the listed number of each kind.
POST_KINDS = [
    ("command", 4, (), (), True, 1, 1),
    ("screening", 7, (), (), True, 2, 4),
    ("screening", 6, (), ("security", "driving"), False, 2, 1),
    ("medical", 4, ("medical",), (), False, 1, 1),
    ("medical", 3, (), ("medical", "psychology"), False, 2, 1),
    ("supplies", 5, (), ("driving", "logistics"), True, 2, 2),
    ("supplies", 4, (), (), False, 3, 2),
    ("patrol", 5, (), (), False, 3, 3),
    ("patrol", 3, (), ("rescue", "firefighting", "boat"), False, 1, 1),
    ("patrol", 2, ("electrician",), (), False, 2, 1),
    ("information", 3, (), ("publicity", "it"), False, 4, 1),
    ("care", 4, (), ("elderly_care", "medical", "psychology"), False, 2, 2),
    ("care", 5, (), (), False, 4, 1),
]


def make_city(seed: int = 7, communities: int = 300, streets: int = 30, people: int = 44_000,
              slots_per_person: float = 0.84):
    """Return ``(people, posts)``: a seeded synthetic city of :class:`Person` and :class:`Post`.

    >>> ps, qs = make_city(seed=1, communities=4, streets=2, people=400)
    >>> len(ps), len({q.community for q in qs})
    (400, 4)
    """
    rng = np.random.default_rng(seed)
    per_street = communities // streets
    side = int(np.ceil(np.sqrt(streets)))
    # a community's plan scales with its nominal size; its roster of available people varies around it
    nominal = rng.gamma(8.0, 1.0, communities)
    roster = nominal * rng.uniform(0.92, 1.3, communities)
    sizes = np.maximum(20, np.round(roster / roster.sum() * people)).astype(int)
    sizes[-1] += people - sizes.sum()
    nominal = nominal / nominal.mean()
    base_slots = sum(k[1] * k[6] for k in POST_KINDS)
    out_people: list[Person] = []
    out_posts: list[Post] = []
    skills = list(SKILL_SHARE)
    shares = np.array([SKILL_SHARE[s] for s in skills])
    pid = 0
    for c in range(communities):
        st = c // per_street
        street = f"S{st:02d}"
        comm = f"C{c:03d}"
        # streets on a grid 4 km apart, communities 1.2 km apart inside a street
        lat0 = 30.0 + (st // side) * 0.036 + ((c % per_street) // 4) * 0.011
        lon0 = 120.0 + (st % side) * 0.042 + ((c % per_street) % 4) * 0.012
        n = int(sizes[c])
        # posts scale with the community's nominal size, not its actual roster, so rosters vary
        scale = slots_per_person * people / communities / base_slots * nominal[c]
        posts_here: list[Post] = []
        k = 0
        for group, head, sk_all, sk_any, leader, prio, count in POST_KINDS:
            for _ in range(max(1, int(round(count * scale)))):
                posts_here.append(Post(
                    id=f"{comm}-P{k:02d}", community=comm, street=street,
                    lat=lat0 + rng.normal(0, 0.003), lon=lon0 + rng.normal(0, 0.003),
                    headcount=int(max(1, round(head * rng.uniform(0.8, 1.2)))),
                    skills_all=frozenset(sk_all), skills_any=frozenset(sk_any),
                    leader_required=leader, priority=prio, group=group))
                k += 1
        out_posts += posts_here
        has = rng.random((n, len(skills))) < shares
        leader = rng.random(n) < 0.10
        party = rng.random(n) < 0.35
        eligible = rng.random(n) < 0.97
        duty = rng.poisson(0.5, n)
        lat = lat0 + rng.normal(0, 0.004, n)
        lon = lon0 + rng.normal(0, 0.004, n)
        squad = np.full(n, -1)
        n_squads = 1 + int(rng.random() < 0.5)
        start = 0
        for s in range(n_squads):
            size = int(rng.integers(5, 10))
            squad[start:start + size] = s
            party[start:start + size] = True
            start += size
        # pre-assign 60 % of people to a post they qualify for, squads together where they can
        pre: list[str | None] = [None] * n
        fill = {q.id: 0 for q in posts_here}
        squad_post = {}
        for s in range(n_squads):
            if rng.random() < 0.8:
                squad_post[s] = posts_here[int(rng.integers(0, len(posts_here)))]
        for i in range(n):
            mine = frozenset(np.array(skills)[has[i]])
            if squad[i] >= 0 and squad[i] in squad_post:
                q = squad_post[squad[i]]
                if q.skills_all <= mine and (not q.skills_any or q.skills_any & mine):
                    pre[i] = q.id
                    continue
            if rng.random() < 0.6:
                for j in rng.permutation(len(posts_here))[:6]:
                    q = posts_here[j]
                    if fill[q.id] < q.headcount and q.skills_all <= mine and (not q.skills_any or q.skills_any & mine):
                        fill[q.id] += 1
                        pre[i] = q.id
                        break
        groups = [q.group for q in posts_here]
        for i in range(n):
            mine = frozenset(np.array(skills)[has[i]])
            out_people.append(Person(
                id=pid, community=comm, street=street, lat=float(lat[i]), lon=float(lon[i]),
                skills=mine, leader=bool(leader[i]), party_member=bool(party[i]),
                squad=f"{comm}-Q{squad[i]}" if squad[i] >= 0 else None,
                preassigned_post=pre[i], recent_duty=int(duty[i]), eligible=bool(eligible[i]),
                group=(next(q.group for q in posts_here if q.id == pre[i]) if pre[i]
                       else groups[int(rng.integers(0, len(groups)))])))
            pid += 1
    return out_people, out_posts
