"""Bulk writes of a solve: posts, orders, people's status, branches, links.

A city writes tens of thousands of rows in one transaction: the rows are built here as plain tuples,
their values prepared once in the forms both drivers take as they are (JSON as text, SQLite datetimes
as the text SQLAlchemy reads back), as :mod:`realtime.log` does for events, and go to the driver
through :class:`~mobilize.activations.rows.Rows`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations.models import Branch, BranchMember, Order, PhoneLinkRow, Post
from mobilize.activations.rows import Rows
from mobilize.branches import BranchPlan, Member
from mobilize.costs import COMPONENTS
from mobilize.costs import Post as Demand
from mobilize.db import utcnow
from mobilize.orders import deadlines
from mobilize.phonelinks import hash_token, new_tokens
from mobilize.plans import PostSpec
from mobilize.solver import Solution
from realtime.log import compact_json
from realtime.models import NewEvent
from rosters.models import Person

__all__ = ["insert_posts", "posts_beside_solver", "resize_posts", "set_filled", "cancel_orders", "insert_orders", "set_people_status", "save_branches",
           "branch_members", "members_of", "demands_of", "filled_of", "insert_links", "notice_rows", "notified_events", "explanation_of", "LINK_DAYS"]

_CHUNK = 900
_SCAN_FROM = 5 * _CHUNK  # people from which their links are found by reading all of the activation's
LINK_DAYS = 14  # a link outlives any activation; ending the activation expires it at once


def _chunks(items: list, size: int = _CHUNK):
    for i in range(0, len(items), size):
        yield items[i: i + size]


_dumps = compact_json()


def demands_of(specs: Iterable[PostSpec]) -> list[Demand]:
    """Return the solver's view of the posts (id = the post key)."""
    return [Demand(s.key, s.community, s.street, s.lat, s.lon, s.headcount, s.skills_all, s.skills_any,
                   s.leader_required, s.priority, s.group) for s in specs]


def filled_of(assignments, keys: Iterable[str] = ()) -> dict[str, int]:
    """Return the holders per post key among ``assignments`` (every key of ``keys`` present, 0 if none)."""
    filled = dict.fromkeys(keys, 0)
    for a in assignments:
        filled[a.post] = filled.get(a.post, 0) + 1
    return filled


_POST_COLUMNS = ("activation_id", "key", "community_id", "code", "group", "name_zh", "name_en", "site_code",
                 "site_name", "lat", "lon", "headcount", "filled", "skills_all", "skills_any", "leader_required",
                 "priority", "shift_hours", "active")


async def insert_posts(session: AsyncSession, activation_id: int, specs: Sequence[PostSpec],
                       community_ids: dict[str, int], filled: dict[str, int] | None = None, *,
                       beside_solver: bool = False) -> dict[str, int]:
    """Insert the posts (with their ``filled`` counts by key) and return their ids by key.

    ``beside_solver``: the solver runs meanwhile in another thread, so the posts go as one statement
    (:meth:`Rows.insert`'s ``one_statement``): an executemany would wait on the solver for every row.
    """
    db = await Rows.of(session)
    filled = filled or {}
    texts: dict[frozenset, str] = {}  # few distinct skill sets among thousands of posts

    def skills(of: frozenset) -> str:
        text = texts.get(of)
        if text is None:
            text = texts[of] = _dumps(sorted(of))
        return text

    ids = await db.insert_returning_ids(Post.__table__, _POST_COLUMNS, [
        (activation_id, s.key, community_ids[s.community], s.code, s.group, s.zh, s.en, s.site_code, s.site_name,
         s.lat, s.lon, s.headcount, filled.get(s.key, 0), skills(s.skills_all), skills(s.skills_any),
         s.leader_required, s.priority, s.shift_hours, True) for s in specs], one_statement=beside_solver)
    return {s.key: i for s, i in zip(specs, ids, strict=True)}


async def posts_beside_solver(session: AsyncSession) -> bool:
    """Return whether posts are written while the solver runs, their holder counts set after.

    On SQLite: one statement each, run by the driver's thread without the GIL; the solver waits only
    while the rows and their JSON are built. Not on PostgreSQL: asyncpg works on the event loop's thread (it would contend with the
    solver for the GIL), and setting the counts after is one more UPDATE of every post.
    """
    return (await session.connection()).dialect.name == "sqlite"


async def resize_posts(session: AsyncSession, sizes: dict[int, int], gone: Sequence[int],
                       filled: dict[int, int] | None = None) -> None:
    """Resize and re-activate posts (id -> headcount), with their holder counts where ``filled`` gives them
    (id -> filled); deactivate ``gone`` ones (filled 0). One statement each, so that it may run beside the solver."""
    db = await Rows.of(session)
    if filled is None:
        await db.update_ints(Post.__table__, ("headcount",), {pid: (n,) for pid, n in sizes.items()}, {"active": True})
    else:
        await db.update_ints(Post.__table__, ("headcount", "filled"),
                             {pid: (n, filled[pid]) for pid, n in sizes.items()}, {"active": True})
    await db.update_where_id_in(Post.__table__, "filled = 0, active = ?", (False,), gone)


async def cancel_orders(session: AsyncSession, order_ids: Sequence[int], reason: str, now: datetime) -> None:
    """Cancel orders (``closed_reason`` = ``reason``), in one statement however many."""
    db = await Rows.of(session)
    await db.update_where_id_in(Order.__table__, "status = 'cancelled', closed_reason = ?, updated_at = ?",
                                (reason, db.when(now)), order_ids)


async def set_filled(session: AsyncSession, filled: dict[int, int]) -> None:
    """Set the posts' holder counts (id -> filled), in one statement."""
    db = await Rows.of(session)
    await db.update_ints(Post.__table__, ("filled",), {pid: (n,) for pid, n in filled.items()})


def _explanation(a) -> str:
    # Stored compactly: the cost parts in COMPONENTS order, e.g. [7,0,0,0,35,0]; travel minutes, cost,
    # borrowed and leader part are the order's own columns. explanation_of() gives the whole of it back.
    return (f"[{int(a.travel)},{int(a.preassignment)},{int(a.borrow)},{int(a.squad_split)},{int(a.fairness)},"
            f"{int(a.keep_in_place)}]")


def explanation_of(order) -> dict:
    """Return why the order's person landed on its post: travel minutes, cost, its parts, borrowed, leader part.

    >>> from types import SimpleNamespace as O
    >>> explanation_of(O(explanation=[7, 0, 45, 0, 0, 0], travel_minutes=7, cost=52, borrowed=True, leader_part=False))
    ... # doctest: +NORMALIZE_WHITESPACE
    {'travel_minutes': 7, 'cost': 52, 'parts': {'travel': 7, 'preassignment': 0, 'borrow': 45, 'squad_split': 0,
     'fairness': 0, 'keep_in_place': 0}, 'borrowed': True, 'leader_part': False}

    An order written otherwise (moved by an operator; stored whole before the compact form) is returned as stored.
    """
    stored = order.explanation
    if isinstance(stored, list) and len(stored) == len(COMPONENTS):
        return {"travel_minutes": order.travel_minutes, "cost": order.cost, "parts": dict(zip(COMPONENTS, stored)),
                "borrowed": bool(order.borrowed), "leader_part": bool(order.leader_part)}
    return stored


_ORDER_COLUMNS = ("person_id", "post_id", "leader_part", "borrowed", "travel_minutes", "cost", "explanation")


async def insert_orders(session: AsyncSession, activation_id: int, assignments, post_ids: dict[str, int], *,
                        ack_minutes: int, arrive_minutes: int,
                        at: datetime | None = None) -> tuple[datetime, dict[int, int]]:
    """Insert one notified order per assignment, with its answer deadlines; return their arrive deadline and
    the new order ids by person."""
    db = await Rows.of(session)
    created = at or utcnow()
    ack_deadline, arrive_deadline = deadlines(created, ack_minutes, arrive_minutes)
    now, ack_at, arrive_at = db.when(created), db.when(ack_deadline), db.when(arrive_deadline)
    # Tens of thousands of orders share a few dozen cost breakdowns: each one's columns are built once.
    tails: dict[tuple, tuple] = {}
    rows = []
    for a in assignments:
        key = (a.travel_minutes, a.cost, a.travel, a.preassignment, a.borrow, a.squad_split, a.fairness,
               a.keep_in_place, a.borrowed, a.leader_part)
        tail = tails.get(key)
        if tail is None:
            tail = tails[key] = (bool(a.leader_part), bool(a.borrowed), int(a.travel_minutes), int(a.cost),
                                 _explanation(a))
        rows.append((int(a.person), post_ids[a.post], *tail))
    same = {"activation_id": activation_id, "status": "notified", "created_at": now, "updated_at": now,
            "ack_deadline_at": ack_at, "arrive_deadline_at": arrive_at, "arrive_minutes": arrive_minutes,
            "escalation_step": 0, "next_check_at": ack_at}
    ids = await db.insert_returning_ids(Order.__table__, _ORDER_COLUMNS, rows, same)
    return arrive_deadline, {row[0]: i for row, i in zip(rows, ids, strict=True)}


async def set_people_status(session: AsyncSession, person_ids: Sequence[int], status: str) -> None:
    """Set the standing status (and ``updated_at``) of many people at once, at the driver's level."""
    ids = list(person_ids)
    if not ids:
        return
    db = await Rows.of(session)
    now = db.when(utcnow())
    # one statement, the ids as one array: a city's key press waits on one call, not dozens
    await db.update_where_id_in(Person.__table__, "status = ?, updated_at = ?", (status, now), ids)


async def insert_links(session: AsyncSession, activation_id: int, person_ids: Sequence[int], *,
                       now: datetime) -> dict[int, str]:
    """Return a fresh token per person without a link for this activation yet (only hashes are stored).

    The links these people already hold are read by person (IN lists on the (person, activation) index), or
    all of the activation's at once when they are very many (a city's tens of thousands of IN lists cost more
    than reading every row); then one executemany.
    """
    db = await Rows.of(session)
    links = db.table(PhoneLinkRow.__table__)
    ids = list(person_ids)
    if len(ids) > _SCAN_FROM:
        have = {pid for (pid,) in await db.fetch(f"SELECT person_id FROM {links} WHERE activation_id = ?",
                                                 (activation_id,))}
    elif not db.sqlite:  # one array: the (person, activation) index, and one plan whatever the count
        have = {pid for (pid,) in await db.fetch(
            f"SELECT person_id FROM {links} WHERE person_id = ANY(?::int[]) AND activation_id = ?", (ids, activation_id))}
    else:  # a fan-out's chunk reads its own people, not the links its earlier chunks made
        have = set()
        for chunk in _chunks(ids):
            have.update(pid for (pid,) in await db.fetch(
                f"SELECT person_id FROM {links} WHERE activation_id = ? AND person_id IN ({', '.join('?' * len(chunk))})",
                (activation_id, *chunk)))
    fresh = list(dict.fromkeys(pid for pid in ids if pid not in have))
    tokens = dict(zip(fresh, new_tokens(len(fresh)), strict=True))
    created, expires = db.when(now), db.when(now + timedelta(days=LINK_DAYS))
    await db.insert(PhoneLinkRow.__table__, ("token_hash", "person_id", "activation_id", "created_at", "expires_at"),
                    [(hash_token(t), pid, activation_id, created, expires) for pid, t in tokens.items()])
    return tokens


def members_of(holding: Iterable[tuple[int, str]], candidates: dict, specs: dict[str, PostSpec]) -> list[Member]:
    """Return the party members among (person, post key) holders as branch-formation input."""
    out = []
    for person, key in holding:
        c = candidates[person]
        if not c.party_member:
            continue
        spec = specs[key]
        out.append(Member(person, spec.community, spec.group, True, c.leader, spec.group == "command", key,
                          spec.lat, spec.lon))
    return out


def notice_rows(assignments, order_ids: dict[int, int], specs: dict[str, PostSpec],
                arrive_by: datetime) -> list[tuple]:
    """Return the new orders as :meth:`~mobilize.activations.notices.Notices.dispatched` takes them."""
    out = []
    for a in assignments:
        s = specs[a.post]
        out.append((order_ids[a.person], a.person, arrive_by, s.zh, s.en, s.site_name))
    return out


def notified_events(stream: str, assignments, orders: dict[int, int], post_ids: dict[str, int]) -> list[NewEvent]:
    """Return one ``orders.notified`` event per community for the new orders of ``assignments`` (派单).

    Its body names the community, how many were dispatched there and each order with its post,
    ``{"community": code, "count": n, "orders": [[order id, post id], ...]}``: a city's key press is a few
    hundred events, not one per order (tens of thousands to write, publish and replay).
    """
    by_community: dict[str, list[list[int]]] = {}
    for a in assignments:
        by_community.setdefault(a.post.split("/", 1)[0], []).append([orders[a.person], post_ids[a.post]])
    return [NewEvent(stream, "orders.notified", {"community": code, "count": len(pairs), "orders": pairs})
            for code, pairs in by_community.items()]


def branch_members(solution: Solution, candidates: dict, specs: dict[str, PostSpec]) -> list[Member]:
    """Return the assigned party members of ``solution`` as branch-formation input."""
    return members_of(((a.person, a.post) for a in solution.assignments), candidates, specs)


async def save_branches(session: AsyncSession, activation_id: int, plan: BranchPlan,
                        community_ids: dict[str, int], *, community_id: int | None = None) -> None:
    """Replace the activation's active branches by ``plan`` (ids kept by key, members rewritten).

    With ``community_id`` only that community's branches are replaced (a repair after a change there).
    """
    db = await Rows.of(session)
    branches = db.table(Branch.__table__)
    # Every stored branch of the scope, whatever its status: a key dissolved earlier (even earlier in
    # this transaction) comes back to life under its old row rather than as a second one.
    stored_q = f"SELECT key, id, status FROM {branches} WHERE activation_id = ?"
    params: tuple = (activation_id,)
    if community_id is not None:
        stored_q += " AND community_id = ?"
        params = (activation_id, community_id)
    stored = {key: (bid, status) for key, bid, status in await db.fetch(stored_q, params)}
    active = {key: bid for key, (bid, status) in stored.items() if status == "active"}
    keep = {b.id for b in plan.branches}
    gone = [bid for key, bid in active.items() if key not in keep]
    now = db.when(utcnow())
    await db.executemany(f"UPDATE {branches} SET status = 'dissolved', closed_at = ? WHERE id = ?",
                         [(now, bid) for bid in gone])
    await db.insert(Branch.__table__, ("activation_id", "key", "community_id", "groups", "joint", "secretary_id",
                                       "status", "formed_at"),
                    [(activation_id, b.id, community_ids[b.community], _dumps(list(b.groups)), b.joint, b.secretary,
                      "active", now) for b in plan.branches if b.id not in stored])
    await db.executemany(f"UPDATE {branches} SET groups = ?, joint = ?, secretary_id = ?, status = 'active', "
                         "closed_at = NULL WHERE id = ?",
                         [(_dumps(list(b.groups)), b.joint, b.secretary, stored[b.id][0])
                          for b in plan.branches if b.id in stored])
    ids = {b.id: stored[b.id][0] for b in plan.branches if b.id in stored}
    if len(ids) < len(plan.branches):
        ids.update({key: bid for key, bid, _ in await db.fetch(stored_q, params) if key in keep})
    touched = [stored[b.id][0] for b in plan.branches if b.id in stored]  # dissolved ones keep their history
    if touched:
        await session.execute(delete(BranchMember).where(BranchMember.branch_id.in_(touched)))
    rows = []
    for b in plan.branches:
        in_group = {}
        for g in b.party_groups:
            for m in g.members:
                in_group[m] = (g.id, m == g.head)
        branch_id = ids[b.id]
        for m in b.members:
            group_id, head = in_group.get(m, (None, False))
            rows.append((branch_id, m, group_id, head))
    await db.insert(BranchMember.__table__, ("branch_id", "person_id", "party_group", "group_head"), rows)
