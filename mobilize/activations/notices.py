"""What dispatch tells people, through the outbox (written in the same transaction as the change)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mobilize.activations import writes
from mobilize.activations.models import Activation, Order, Post
from mobilize.db import aware, utcnow
from mobilize.notify.outbox import Notice, check_notice, encode_payload, enqueue_encoded, enqueue_many
from mobilize.phonelinks import link_url
from rosters.models import Person, Team

__all__ = ["Notices", "INLINE_LIMIT"]

#: Default of :attr:`Notices.inline_limit` (``MOBILIZE_NOTICES_INLINE``).
INLINE_LIMIT = 2000

#: Up to this many newly linked people, their orders are read by person (one IN list, SQLite's variable
#: limit in mind) instead of reading all of the activation's notified orders (tens of thousands) for a few.
_BY_PERSON = 500


class Notices:
    """Enqueue dispatch notifications on ``channel`` with personal links under ``base_url``."""

    def __init__(self, *, channel: str = "log", base_url: str = "http://127.0.0.1:8000",
                 inline_limit: int = INLINE_LIMIT) -> None:
        self.channel = channel
        self.base_url = base_url
        #: Up to this many new orders, their links and messages are made in the dispatching transaction;
        #: more are fanned out after its commit (:mod:`mobilize.activations.fanout`).
        self.inline_limit = inline_limit

    async def tell(self, session: AsyncSession, activation: Activation, people: Sequence[int], *,
                   orders: Iterable[tuple] | None = None, now: datetime | None = None) -> int:
        """Tell ``people`` of their new orders (:meth:`dispatched`), each with a personal link made now if they
        hold none for the activation yet: a dispatch, a backup, a move before a large dispatch's fan-out."""
        links = await writes.insert_links(session, activation.id, people, now=now or utcnow())
        return await self.dispatched(session, activation, links, orders=orders, people=people)

    async def dispatched(self, session: AsyncSession, activation: Activation, links: dict[int, str], *,
                         orders: Iterable[tuple] | None = None, people: Iterable[int] | None = None) -> int:
        """Tell each newly dispatched person their post, place, report-by time and, if new, their link.

        ``links`` are the fresh tokens (people dispatched for the first time in this activation). ``people``
        are everyone newly dispatched (default: those of ``links``): someone picked again after a level change
        or as a backup already holds a link, which is stored only as a hash, so their notice comes without one
        and their page shows the new order. ``orders`` are the new orders as ``(order id, person id, arrive
        deadline, post name zh, post name en, place)`` when the caller has them at hand; otherwise the
        activation's notified orders are read.
        """
        targets = set(links) if people is None else set(people)
        if not targets:
            return 0
        if orders is None:
            query = (select(Order.id, Order.person_id, Order.arrive_deadline_at, Post.name_zh, Post.name_en,
                            Post.site_name).join(Post, Post.id == Order.post_id)
                     .where(Order.activation_id == activation.id, Order.status == "notified"))
            if len(targets) <= _BY_PERSON:  # a backup or a filled shortage: those people's orders only
                query = query.where(Order.person_id.in_(list(targets)))
            # Otherwise one read of the activation's notified orders (an IN list per 900 people cost more
            # than it saved); the orders of people not dispatched now are skipped below.
            orders = (await (await session.connection()).execute(query)).all()
        # An activation's orders share a few thousand posts and a few deadlines: each payload shape is
        # checked and encoded once, and only the link differs per person (tokens need no JSON escaping).
        kind, channel, aid = "order_notified", self.channel, activation.id
        drill = "true" if activation.is_drill else "false"
        tail = f'","drill":{drill}}}'
        link_head = encode_payload(link_url(self.base_url, ""))[:-1]
        heads: dict[tuple, str] = {}
        rows = []
        for oid, pid, arrive_by, zh, en, site in orders:
            if pid not in targets:
                continue
            token = links.get(pid)
            shape = (zh, en, site, arrive_by)
            head = heads.get(shape)
            if head is None:
                payload = {"post": zh, "post_en": en, "place": site, "report_by": aware(arrive_by)}
                check_notice(kind, channel, {**payload, "link": link_url(self.base_url, "x" * 43),
                                             "drill": activation.is_drill}, f"order:{oid}:notified")
                head = heads[shape] = encode_payload(payload)[:-1]
            body = f'{head},"link":{link_head}{token}{tail}' if token is not None else f'{head},"drill":{drill}}}'
            rows.append((kind, channel, pid, aid, oid, f"order:{oid}:notified", body))
        return await enqueue_encoded(session, rows)

    async def step(self, session: AsyncSession, activation: Activation, order: Order, step: str) -> int:
        """Tell who a ladder step concerns: the person (reminder), their team leader, or the post's secretary."""
        post = await session.get(Post, order.post_id)
        person = await session.get(Person, order.person_id)
        base = {"post": post.name_zh, "post_en": post.name_en, "place": post.site_name, "drill": activation.is_drill}
        if step == "remind_person":
            notices = [Notice("reminder", person.id, f"order:{order.id}:reminder", self.channel,
                              {**base, "report_by": aware(order.ack_deadline_at)}, activation.id, order.id)]
        elif step == "tell_team_leader":
            team = await session.get(Team, person.team_id) if person.team_id else None
            if team is None or team.leader_id is None or team.leader_id == person.id:
                return 0
            notices = [Notice("team_leader_alert", team.leader_id, f"order:{order.id}:leader", self.channel,
                              {**base, "member": person.name}, activation.id, order.id)]
        elif step == "reassigned":
            notices = [Notice("reassigned", person.id, f"order:{order.id}:reassigned", self.channel, base,
                              activation.id, order.id)]
        else:  # tell_secretary_and_command: the community's designated command-group leaders
            leaders = (await session.execute(select(Person.id).where(
                Person.community_id == post.community_id, Person.group_leader.is_(True),
                Person.wartime_group == "command"))).scalars().all()
            notices = [Notice("secretary_alert", pid, f"order:{order.id}:secretary:{pid}", self.channel,
                              {**base, "short": 1}, activation.id, order.id) for pid in leaders]
        return await enqueue_many(session, notices)

    async def ended(self, session: AsyncSession, activation: Activation, people: Iterable[int]) -> int:
        """Tell everyone released by switch-back (战转平).

        Tens of thousands of people get the one payload: it is checked and encoded once (as
        :meth:`dispatched` does), and each row differs only in its person and dedupe key.
        """
        kind, channel, aid = "activation_ended", self.channel, activation.id
        payload = {"drill": activation.is_drill}
        body = encode_payload(payload)
        rows = [(kind, channel, pid, aid, None, f"activation:{aid}:ended:{pid}", body) for pid in people]
        if rows:  # the keys differ only in a person id's digits: the longest (of the highest id) stands for all
            check_notice(kind, channel, payload, f"activation:{aid}:ended:{max(r[2] for r in rows)}")
        return await enqueue_encoded(session, rows)
