"""The in-process backend: a publish is delivered straight to this process's subscribers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from realtime.backends import Backend, Deliver, Reset

__all__ = ["MemoryBackend"]


class MemoryBackend(Backend):
    """Delivers within one process; nothing can be lost, so it never resets."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def connect(self, deliver: Deliver, reset: Reset) -> None:
        self._deliver = deliver

    async def disconnect(self) -> None:
        self._deliver = None

    async def subscribe(self, channel: str) -> None:
        pass

    async def unsubscribe(self, channel: str) -> None:
        pass

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        deliver = self._deliver
        if deliver is None:
            raise RuntimeError("hub is not connected")
        for channel, text, data in items:
            deliver(channel, text, data)
