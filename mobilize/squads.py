"""Anchor posts of commando squads (突击队), for all squads at once with numpy.

A squad's anchor is the post its members should serve together; serving elsewhere costs
``squad_split`` (:mod:`mobilize.costs`). The rule, per squad over its eligible members:

1. Some member is pre-assigned to a post of the problem: the post most members are pre-assigned to
   (ties: the larger headcount, then the smaller post id).
2. Otherwise the squad's community is the one most members live in (ties: the first community), and
   the anchor is the post of that community that can take the most members — ``min(headcount,
   members qualified for it)``, a member counted once per slot group of the post they qualify for —
   ties going to the post nearest the members' centre, then the smaller post id. A community
   without posts gives no anchor (-1).

A city has hundreds of squads: one vectorized pass replaces a Python loop of numpy calls per squad.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from mobilize.costs import Arrays

__all__ = ["anchors_of", "ranges"]


def _first_per_key(keys: np.ndarray, *sort_by: np.ndarray) -> np.ndarray:
    """Return the index of the first row per key after sorting by ``sort_by`` (most significant first)."""
    order = np.lexsort((*reversed(sort_by), keys))
    k = keys[order]
    return order[np.r_[True, k[1:] != k[:-1]]] if len(k) else order


def _id_rank(a: Arrays) -> np.ndarray:
    """Return each post's rank by ``str(id)`` (the tie-break of the rule)."""
    rank = getattr(a, "_post_id_rank", None)
    if rank is None or len(rank) != len(a.posts):
        ids = np.array([str(q.id) for q in a.posts], dtype=object)
        rank = np.empty(len(ids), dtype=np.int64)
        rank[np.argsort(ids, kind="stable")] = np.arange(len(ids))
        a._post_id_rank = rank
    return rank


def anchors_of(a: Arrays, squads: np.ndarray) -> np.ndarray:
    """Return the anchor post index of each squad of ``squads`` (-1: none; see the module docstring)."""
    out = np.full(len(squads), -1, dtype=np.int64)
    if not len(squads):
        return out
    slot_of = np.full(len(a.squads), -1, dtype=np.int64)
    slot_of[squads] = np.arange(len(squads))
    members = np.flatnonzero((a.p_squad >= 0) & a.p_eligible)
    members = members[slot_of[a.p_squad[members]] >= 0]
    if not len(members):
        return out
    sq = slot_of[a.p_squad[members]]
    headcount = np.array([q.headcount for q in a.posts], dtype=np.int64)
    rank = _id_rank(a)
    n_posts = max(len(a.posts), 1)

    # 1. pre-assigned members: the post most of them hold
    pre = a.p_pre[members]
    has = pre >= 0
    if has.any():
        keys, counts = np.unique(sq[has] * n_posts + pre[has], return_counts=True)
        s, q = keys // n_posts, keys % n_posts
        best = _first_per_key(s, -counts, -headcount[q], rank[q])
        out[s[best]] = q[best]
    todo = np.flatnonzero(out < 0)
    pending = np.zeros(len(squads), dtype=bool)
    pending[todo] = True
    keep = pending[sq]
    members, sq = members[keep], sq[keep]
    if not len(members):
        return out

    # 2. the community most members live in, and its post that takes the most of them
    n_comm = max(len(a.communities), 1)
    keys, counts = np.unique(sq * n_comm + a.p_comm[members], return_counts=True)
    s, c = keys // n_comm, keys % n_comm
    best = _first_per_key(s, -counts, c)
    comm = np.full(len(squads), -1, dtype=np.int64)
    comm[s[best]] = c[best]
    # member × slot group of the squad's community: how many qualify for each post
    g_order = np.argsort(a.g_comm, kind="stable")
    g_start = np.searchsorted(a.g_comm[g_order], np.arange(n_comm + 1))
    mc = comm[sq]
    lo, hi = g_start[mc], g_start[mc + 1]
    reps = hi - lo
    pm = np.repeat(members, reps)
    pg = g_order[np.repeat(lo, reps) + ranges(reps)]
    ok = a.kind_ok[a.g_kind[pg], a.p_kind[pm]] & a.p_eligible[pm]  # as Arrays.qualifies, pair by pair
    takes = np.bincount(np.repeat(sq, reps)[ok] * n_posts + a.g_post[pg[ok]], minlength=len(squads) * n_posts) \
        if len(pg) else np.zeros(len(squads) * n_posts, dtype=np.int64)
    # candidate posts: every post of each pending squad's community
    q_order = np.argsort(a.q_comm, kind="stable")
    q_start = np.searchsorted(a.q_comm[q_order], np.arange(n_comm + 1))
    cand_s = np.flatnonzero(pending & (comm >= 0))
    lo, hi = q_start[comm[cand_s]], q_start[comm[cand_s] + 1]
    reps = hi - lo
    cs = np.repeat(cand_s, reps)
    cq = q_order[np.repeat(lo, reps) + ranges(reps)]
    if not len(cq):
        return out
    n_of = np.bincount(sq, minlength=len(squads)).astype(float)
    lat = np.bincount(sq, weights=a.p_lat[members], minlength=len(squads)) / np.maximum(n_of, 1)
    lon = np.bincount(sq, weights=a.p_lon[members], minlength=len(squads)) / np.maximum(n_of, 1)
    from mobilize.costs import travel_minutes  # noqa: PLC0415 - costs imports this module

    dist = travel_minutes(lat[cs], lon[cs], a.q_lat[cq], a.q_lon[cq], 60.0)
    take = np.minimum(headcount[cq], takes[cs * n_posts + cq])
    best = _first_per_key(cs, -take, dist, rank[cq])
    out[cs[best]] = cq[best]
    return out


def ranges(counts: np.ndarray) -> np.ndarray:
    """Return ``0..k-1`` for each ``k`` in ``counts``, concatenated."""
    ends = np.cumsum(counts)
    return np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - counts, counts)
