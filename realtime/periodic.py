"""A round of work repeated every ``interval`` seconds on the running event loop, until stopped.

The stats ticker and the log follower are both one: a round that fails (the database briefly away) is
logged and the next one tries again; ``stop`` cancels the loop and waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

__all__ = ["Periodic"]


class Periodic:
    """Runs :meth:`tick` every ``interval`` seconds between :meth:`start` and :meth:`stop` (or as a context)."""

    #: the task's name, and what a failed round is logged as
    task_name = "realtime-periodic"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    async def tick(self) -> object:
        """One round of work."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.task_name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def __aenter__(self):
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # the next round tries again
                logging.getLogger("realtime").exception("%s: a round failed", self.task_name)
