"""The delivery worker: claim due outbox rows with a lease, send them, record what happened.

One round (:func:`deliver_due`) is three short steps, so no transaction stays open while a gateway
is slow:

1. **Claim** in one write transaction: due rows (``pending`` whose ``next_attempt_at`` has come, or
   ``sending`` whose lease has run out: their worker died) are set ``sending`` with
   ``claimed_by``/``claimed_until`` and ``attempts + 1``. PostgreSQL picks them with ``FOR UPDATE
   SKIP LOCKED``, so workers on several instances take disjoint rows without waiting; SQLite takes
   the write lock first (``BEGIN IMMEDIATE``) and the ``UPDATE`` repeats the due condition.
2. **Send** outside any transaction, a few at a time, each within what is left of the lease.
3. **Record** in one write transaction, each update guarded by ``claimed_by`` and ``attempts``: a
   worker whose lease ran out and whose row was claimed again changes nothing. ``sent``; or
   ``pending`` again after an exponential backoff with jitter (or the gateway's ``Retry-After``);
   or ``failed`` (permanent error or too many attempts), the error masked, for operators to see.

Delivery is at least once: a worker that dies after sending but before recording leaves its row to
be sent again when the lease runs out. The SMS gateway gets the same ``Idempotency-Key`` both times,
so the person gets one message.

:class:`Notifier` runs rounds in an asyncio task for the app's lifetime (see its docstring for why
not an APScheduler job).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from mobilize.db import begin_write, utcnow
from mobilize.logs import mask_text
from mobilize.notify.channels import Channel, Message, Permanent, Retryable
from mobilize.notify.models import OutboxMessage
from rosters.models import Person

__all__ = ["Claim", "DeliveryReport", "Notifier", "RetryPolicy", "claim_due", "deliver_due", "worker_name"]

log = logging.getLogger("mobilize.notify")
_T = OutboxMessage.__table__
_ERROR_CHARS = 500
#: Part of the lease spent sending; the rest is margin for recording before the lease runs out.
_SEND_SHARE = 0.8


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to try again: ``base * 2**(attempt-1)`` seconds capped at ``cap``, half of it random.

    >>> import random
    >>> p = RetryPolicy(base=10, cap=60, max_attempts=5)
    >>> [5 <= p.delay(1, random.Random(1)) <= 10, 30 <= p.delay(4, random.Random(1)) <= 60]
    [True, True]
    """

    base: float = 5.0
    cap: float = 600.0
    max_attempts: int = 8

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Return seconds to wait after failed attempt number ``attempt`` (1-based).

        Equal jitter: never less than half the exponential delay (workers that failed together do not
        come back together, nor at once). A gateway's ``retry_after`` wins when it asks for longer,
        up to ``cap``.
        """
        exp = min(self.cap, self.base * 2 ** max(attempt - 1, 0))
        delay = exp / 2 + rng.uniform(0, exp / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap))
        return delay


@dataclass(frozen=True, slots=True)
class Claim:
    """A row this worker holds: the message and the attempt number that guards its update."""

    message: Message
    attempts: int


@dataclass(slots=True)
class DeliveryReport:
    """What one round did."""

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    released: int = 0
    fanned: int = 0  # orders whose links and messages were made (a large dispatch's fan-out)

    def __iadd__(self, other: DeliveryReport) -> Self:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self


def worker_name() -> str:
    """Return a name for this worker, unique across hosts, processes and restarts."""
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _due(now: datetime):
    return or_(and_(_T.c.status == "pending", _T.c.next_attempt_at <= now),
               and_(_T.c.status == "sending", _T.c.claimed_until <= now))


async def claim_due(sessionmaker: async_sessionmaker[AsyncSession], *, now: datetime, worker_id: str,
                    channels: Collection[str], batch: int = 100, lease: timedelta = timedelta(seconds=60),
                    lang: str = "zh-CN") -> list[Claim]:
    """Return up to ``batch`` due rows of ``channels``, now ``sending`` and leased to ``worker_id`` until ``now + lease``."""
    now = _utc(now)
    async with sessionmaker() as session:
        await begin_write(session)
        pick = (select(_T.c.id).where(_due(now), _T.c.channel.in_(list(channels)))
                .order_by(_T.c.next_attempt_at, _T.c.id).limit(batch))
        if session.get_bind().dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True)
        ids = list((await session.execute(pick)).scalars())
        if not ids:
            await session.commit()
            return []
        await session.execute(
            update(_T).where(_T.c.id.in_(ids), _due(now))
            .values(status="sending", claimed_by=worker_id, claimed_until=now + lease, attempts=_T.c.attempts + 1))
        rows = (await session.execute(
            select(_T, Person.phone).join(Person, Person.id == _T.c.person_id)
            .where(_T.c.id.in_(ids), _T.c.claimed_by == worker_id, _T.c.status == "sending")
            .order_by(_T.c.id))).all()
        await session.commit()
    return [Claim(Message(outbox_id=r.id, kind=r.kind, channel=r.channel, person_id=r.person_id, phone=r.phone,
                          payload=r.payload or {}, activation_id=r.activation_id, order_id=r.order_id, lang=lang),
                  r.attempts)
            for r in rows]


async def _send(channel: Channel, message: Message, budget: float) -> tuple[str, str | None, float | None]:
    """Return ``(outcome, error, retry_after)`` of one send: ``sent``, ``retry``, ``failed`` or ``release``."""
    if budget <= 0:
        return "release", None, None
    try:
        await asyncio.wait_for(channel.send(message), budget)
    except Retryable as exc:
        return "retry", str(exc), exc.retry_after
    except Permanent as exc:
        return "failed", str(exc), None
    except TimeoutError:
        return "retry", f"channel {channel.name} took longer than the lease allows", None
    except Exception as exc:
        log.warning("channel %s raised on outbox %s", channel.name, message.outbox_id, exc_info=True)
        return "retry", f"{type(exc).__name__}: {exc}", None
    return "sent", None, None


def _scrubbed(payload: Mapping[str, Any]) -> dict[str, Any]:
    # The link is a credential: kept only while the message may still need it.
    return {k: v for k, v in payload.items() if k != "link"}


async def deliver_due(sessionmaker: async_sessionmaker[AsyncSession], channels: Mapping[str, Channel], *,
                      now: datetime | None = None, batch: int = 100, lease: timedelta = timedelta(seconds=60),
                      worker_id: str, policy: RetryPolicy = RetryPolicy(), concurrency: int = 10,
                      lang: str = "zh-CN", rng: random.Random | None = None) -> DeliveryReport:
    """Return what one round did: claim up to ``batch`` due rows, send each by its channel, record the outcome.

    Rows of a channel not in ``channels`` are left for a worker that has it. ``now`` is the time of
    the round (the clock by default; tests move it); retries are scheduled from it.
    """
    now = _utc(now or utcnow())
    rng = rng or random.Random()
    started = time.monotonic()
    claims = await claim_due(sessionmaker, now=now, worker_id=worker_id, channels=channels.keys(), batch=batch,
                             lease=lease, lang=lang)
    report = DeliveryReport(claimed=len(claims))
    if not claims:
        return report
    send_until = started + lease.total_seconds() * _SEND_SHARE
    gate = asyncio.Semaphore(concurrency)

    async def one(claim: Claim) -> tuple[str, str | None, float | None]:
        if claim.attempts > policy.max_attempts:  # its workers kept dying mid-send
            return "failed", f"gave up after {claim.attempts - 1} attempts whose worker lost its lease", None
        async with gate:
            return await _send(channels[claim.message.channel], claim.message, send_until - time.monotonic())

    outcomes = await asyncio.gather(*(one(c) for c in claims))
    finished = now + timedelta(seconds=time.monotonic() - started)
    params = []
    for claim, (outcome, error, retry_after) in zip(claims, outcomes, strict=True):
        message, attempts = claim.message, claim.attempts
        row = {"b_id": message.outbox_id, "b_attempts": attempts, "b_new_attempts": attempts, "b_sent_at": None,
               "b_next": now, "b_error": mask_text(error)[:_ERROR_CHARS] if error else None,
               "b_payload": dict(message.payload)}
        if outcome == "retry" and attempts >= policy.max_attempts:
            outcome, row["b_error"] = "failed", f"{row['b_error']} (gave up after {attempts} attempts)"[:_ERROR_CHARS]
        if outcome == "sent":
            row.update(b_status="sent", b_sent_at=finished, b_payload=_scrubbed(message.payload))
            report.sent += 1
        elif outcome == "failed":
            row.update(b_status="failed", b_payload=_scrubbed(message.payload))
            report.failed += 1
            log.warning("notification outbox %s (%s to person %s) failed: %s", message.outbox_id, message.kind,
                        message.person_id, row["b_error"])
        elif outcome == "retry":
            delay = policy.delay(attempts, rng, retry_after)
            row.update(b_status="pending", b_next=now + timedelta(seconds=delay))
            report.retried += 1
        else:  # release: not tried, the lease was nearly over; give the attempt back
            row.update(b_status="pending", b_new_attempts=attempts - 1)
            report.released += 1
        params.append(row)
    async with sessionmaker() as session:
        await begin_write(session)
        await session.execute(
            update(_T).where(_T.c.id == bindparam("b_id"), _T.c.claimed_by == worker_id,
                             _T.c.attempts == bindparam("b_attempts"), _T.c.status == "sending")
            .values(status=bindparam("b_status"), attempts=bindparam("b_new_attempts"),
                    sent_at=bindparam("b_sent_at"), next_attempt_at=bindparam("b_next"),
                    last_error=bindparam("b_error"), payload=bindparam("b_payload"),
                    claimed_by=None, claimed_until=None),
            params)
        await session.commit()
    return report


class Notifier:
    """Deliver the outbox for the app's lifetime: an asyncio task started and stopped in the lifespan.

    Each round claims up to ``batch`` due rows; while rounds come back full it goes on at once,
    otherwise it sleeps ``poll`` seconds or until :meth:`wake` (call it after committing a change
    that enqueued messages, so they leave within milliseconds, not at the next poll).

    Why a task and not an APScheduler interval job: delivery wants to run *now* when an activation
    commits 30,000 messages and to keep going while there is work, which a fixed interval does not
    do; the lease and ``SKIP LOCKED`` already make several instances safe, which is what a
    scheduler's job store would otherwise add. Errors (the database away) are logged and the loop
    backs off; it never dies. The notifier owns its channels and closes them on :meth:`stop`.

    ``fanout``, when given, is called at the start of every round: one step of making a large
    dispatch's links and messages (:func:`mobilize.activations.fanout.fan_out_next`), returning how
    many orders it handled; while it finds work the loop does not sleep.
    """

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], channels: Mapping[str, Channel], *,
                 worker_id: str | None = None, batch: int = 100, lease: timedelta = timedelta(seconds=60),
                 poll: float = 1.0, policy: RetryPolicy = RetryPolicy(), concurrency: int = 10,
                 lang: str = "zh-CN", fanout: Callable[[], Awaitable[int]] | None = None):
        self.sessionmaker = sessionmaker
        self.fanout = fanout
        self._fanout_failures = 0
        self._fanout_retry_at = 0.0
        self.channels = dict(channels)
        self.worker_id = worker_id or worker_name()
        self.batch, self.lease, self.poll, self.policy = batch, lease, poll, policy
        self.concurrency, self.lang = concurrency, lang
        self.totals = DeliveryReport()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task | None = None
        self._rng = random.Random()

    async def run_once(self, now: datetime | None = None) -> DeliveryReport:
        """Return what one delivery round did: first a step of any fan-out under way, then a delivery."""
        fanned = await self._fan_out()
        report = await deliver_due(self.sessionmaker, self.channels, now=now, batch=self.batch, lease=self.lease,
                                   worker_id=self.worker_id, policy=self.policy, concurrency=self.concurrency,
                                   lang=self.lang, rng=self._rng)
        report.fanned = fanned
        self.totals += report
        return report

    async def _fan_out(self) -> int:
        # A fan-out step that fails (the database away, a message refused) must not stop delivery of
        # everything else: it is logged and tried again after a growing pause (its chunk rolled back whole).
        if self.fanout is None or time.monotonic() < self._fanout_retry_at:
            return 0
        try:
            fanned = await self.fanout()
        except Exception:
            self._fanout_failures += 1
            self._fanout_retry_at = time.monotonic() + min(60.0, self.poll * 2 ** self._fanout_failures)
            log.exception("notice fan-out failed (%d in a row); delivery goes on", self._fanout_failures)
            return 0
        self._fanout_failures = 0
        return fanned

    async def drain(self, *, max_rounds: int = 10_000) -> DeliveryReport:
        """Return the sum of rounds run until one claims nothing (the CLI and the demo deliver this way)."""
        total = DeliveryReport()
        for _ in range(max_rounds):
            report = await self.run_once()
            total += report
            if not report.claimed and not report.fanned:
                break
        return total

    def wake(self) -> None:
        """Run a round now instead of at the next poll."""
        self._wake.set()

    async def start(self) -> None:
        """Start delivering in the background."""
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._loop(), name=f"notifier {self.worker_id}")

    async def stop(self, timeout: float = 10.0) -> None:
        """Finish the round in progress (up to ``timeout`` seconds, else cancel it) and close the channels.

        A round cancelled mid-send leaves its rows ``sending``: their lease runs out and another
        worker sends them again, with the same idempotency key.
        """
        self._stopping = True
        self._wake.set()
        task, self._task = self._task, None
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for channel in self.channels.values():
            await channel.aclose()

    async def _loop(self) -> None:
        errors = 0
        while not self._stopping:
            self._wake.clear()
            try:
                report = await self.run_once()
                errors = 0
            except Exception:
                errors += 1
                log.exception("notification round failed (%d in a row)", errors)
                await self._sleep(min(30.0, self.poll * 2 ** errors))
                continue
            if report.claimed < self.batch and not report.fanned:
                await self._sleep(self.poll)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), seconds)
        except TimeoutError:
            pass
