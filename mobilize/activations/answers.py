"""Group commit of phone answers (acknowledge, en route, arrived): many presses, one write transaction.

SQLite has one writer, so acks written one transaction each queue on its lock, and on PostgreSQL
every ack queues on the activation stream's row of the event log. :class:`AnswerWriter` is one task
that takes every press queued while its previous transaction committed, writes them all in one
transaction — link check, idempotency lookup, order rows read (locked ``FOR UPDATE`` on PostgreSQL;
SQLite's ``BEGIN IMMEDIATE`` holds the write lock from the first read), the state machine applied in
memory, then one statement each for the compare-and-set updates, the events, the audit rows and the
idempotency records — and answers each request only after the commit, with its own result.

On SQLite (aiosqlite) the whole transaction, ``BEGIN IMMEDIATE`` to ``COMMIT``, runs as ONE call on the
driver's own thread with the raw ``sqlite3`` connection (``answer_batch.write_sqlite``: plain tuples, the
events appended synchronously and published after the commit): a statement each through SQLAlchemy
cost a thread round trip and per-row bind processing, more than SQLite itself. Elsewhere (PostgreSQL)
``answer_batch.apply_batch`` writes with SQLAlchemy Core. Both read the same rows and take the same decisions
(``answer_batch.open_links``, ``answer_batch.decide``); the events are appended last, so PostgreSQL holds the
activation stream's row lock for the shortest time.

Each press still gets exactly what it would get alone: a repeated key (also twice in one batch)
replays the first answer and changes nothing; an impossible action is that request's 409, not the
batch's; and if the batch's transaction fails as a whole, each press is retried in a transaction of
its own so one bad request cannot sink the others. An ack racing the sweeper: whichever transaction
takes the row first decides (the sweeper's timeout is then stale, or the ack a late one).
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.pool import StaticPool

from mobilize.activations.answer_batch import Press, apply_batch, checkpoint_sqlite, write_sqlite
from mobilize.activations.phone import GROUPED_ACTIONS
from mobilize.db import begin_write
from mobilize.errors import MobilizeError
from realtime.log import publish_committed

__all__ = ["AnswerWriter", "MAX_BATCH"]

log = logging.getLogger("mobilize.answers")

#: Presses per transaction at most (also keeps every IN list far below SQLite's variable limit).
MAX_BATCH = 256
#: Seconds a batch waits at most for the rest of a burst of presses (see :meth:`AnswerWriter._gather`).
LINGER = 0.004
#: SQLite: batches between two WAL checkpoints run beside the writer (a busy batch adds a few hundred pages;
#: SQLite's own default checkpoints at 1,000).
CHECKPOINT_EVERY = 3
class AnswerWriter:
    """One task that writes queued phone answers in shared transactions (group commit)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], *, max_batch: int = MAX_BATCH,
                 linger: float = LINGER) -> None:
        self.sessionmaker = sessionmaker
        self.max_batch = max_batch
        self.linger = linger
        self._last = self._want = 1
        #: Held while a batch is written (one at a time: SQLite has one writer; on PostgreSQL batches
        #: that overlapped were smaller and cost more CPU per ack). The other phone writes (declines)
        #: take it too, so they queue here in order instead of polling SQLite's busy lock.
        self.gate = asyncio.Lock()
        self._enough = asyncio.Event()
        self._queue: list[Press] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.batches = 0  # how many transactions were written, and how many presses in them
        self.presses = 0
        self._checkpoint: asyncio.Task | None = None  # SQLite: the WAL checkpoint under way, off the commits
        self._since_checkpoint = 0

    async def start(self) -> None:
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="phone-answer-writer")

    async def stop(self) -> None:
        """Write what is queued, then stop."""
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        await self._task
        self._task = None
        if self._checkpoint is not None:
            await self._checkpoint

    async def submit(self, token: str, action: str, *, key: str, reason: str | None, note: str | None,
                     now: datetime) -> tuple[int, dict]:
        """Return (status, answer) once this press is committed; raise its own error otherwise."""
        if action not in GROUPED_ACTIONS:  # pragma: no cover - the router sends only these
            raise ValueError(action)
        if self._task is None:
            await self.start()
        future = asyncio.get_running_loop().create_future()
        self._queue.append(Press(token, action, key, reason, note, now, future))
        self._wake.set()
        if len(self._queue) >= self._want:
            self._enough.set()
        return await future

    def _take(self) -> list[Press]:
        batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
        return batch

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._gather()
                batch = self._take()
                self._last = len(batch)
                try:
                    await self._write(batch)
                except Exception as exc:  # pragma: no cover - _write answers every press itself
                    log.exception("the answer writer failed")
                    for press in batch:
                        if not press.future.done():
                            press.future.set_exception(exc)
            if self._stopping:
                return

    async def _gather(self) -> None:
        """Wait up to ``linger`` seconds for about as many presses as the last batch had.

        Presses come in bursts: a commit answers a batch, and those phones' next presses arrive
        together while the loop reads them one by one. Taking the first at once would write it alone
        and leave the rest waiting for a whole further transaction.
        """
        self._want = max(1, min(self._last // 2, self.max_batch))
        if len(self._queue) >= self._want or self._stopping:
            return
        self._enough.clear()
        try:
            await asyncio.wait_for(self._enough.wait(), self.linger)
        except TimeoutError:
            pass

    async def _write(self, batch: list[Press]) -> None:
        try:
            results = await self._write_batch(batch)
        except Exception as exc:  # the batch as a whole failed: each press alone, so none sinks another
            if len(batch) > 1:
                log.warning("a batch of %d answers failed (%s); writing them one by one", len(batch), exc)
                for press in batch:
                    await self._write([press])
                return
            if not isinstance(exc, MobilizeError):
                log.exception("writing a phone answer failed")
            results = [exc]
        self.batches += 1
        self.presses += len(batch)
        for press, result in zip(batch, results, strict=True):
            if press.future.done():  # the client went away; what was committed stays committed
                continue
            if isinstance(result, BaseException):
                press.future.set_exception(result)
            else:
                press.future.set_result(result)

    async def _write_batch(self, batch: list[Press]) -> list[Any]:
        """Write ``batch`` in one transaction; return per press (status, answer) or the error it gets."""
        start = time.perf_counter()
        bind = self.sessionmaker.kw.get("bind")
        # The raw path needs a connection of its own per checkout (a file database's pool); an in-memory
        # database shares one connection (StaticPool), whose open transaction the raw BEGIN would collide with.
        if bind is not None and bind.dialect.driver == "aiosqlite" and not isinstance(bind.pool, StaticPool):
            async with self.gate, bind.connect() as conn:
                # aiosqlite's connection queues calls to its own thread (as SQLAlchemy's adapter does with
                # it): the batch is one such call, on the sqlite3 connection that thread owns.
                driver = (await conn.get_raw_connection()).driver_connection
                results, events = await driver._execute(write_sqlite, driver._conn, batch)
            publish_committed(self.sessionmaker, events)
            self._since_checkpoint += 1
            if self._since_checkpoint >= CHECKPOINT_EVERY and (self._checkpoint is None or self._checkpoint.done()):
                self._since_checkpoint = 0
                self._checkpoint = asyncio.create_task(self._checkpoint_wal(bind), name="phone-answer-checkpoint")
            log.debug("%d answers written in %.1f ms; %d queued", len(batch),
                      (time.perf_counter() - start) * 1000, len(self._queue))
            return results
        async with self.gate, self.sessionmaker() as session:
            try:
                await begin_write(session)
                results = await apply_batch(session, batch)
                await session.commit()
                log.debug("%d answers written in %.1f ms; %d queued", len(batch),
                          (time.perf_counter() - start) * 1000, len(self._queue))
            except BaseException:
                await session.rollback()
                raise
        return results

    async def _checkpoint_wal(self, bind) -> None:
        """Copy the WAL back into the database file (PASSIVE: waits for nobody, blocks no writer).

        The batches commit with SQLite's automatic checkpoint turned off (:func:`write_sqlite`): run
        inside a commit, its copy and fsync made that batch's presses wait tens of milliseconds.
        """
        try:
            async with bind.connect() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                await driver._execute(checkpoint_sqlite, driver._conn)
        except Exception:  # the next one tries again; meanwhile other writers' commits checkpoint as usual
            log.exception("checkpointing the WAL failed")
