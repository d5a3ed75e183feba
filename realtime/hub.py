"""The hub: publish a message to a channel, every local subscriber gets it through its own bounded queue.

Shape of encode/broadcaster, with bounded queues::

    hub = Hub.from_url("memory://")          # or "redis://127.0.0.1:6379/0"
    async with hub:                           # connect / disconnect (the app's lifespan)
        async with hub.subscribe("activation:12", maxsize=256) as sub:
            await hub.publish("activation:12", {"type": "event", ...})
            message = await sub.get()         # Message(.text, .data) or Resync(.reason)

A message is encoded to JSON once per publish and the same ``Message`` (its ``text``, and its
``data`` decoded once per process) is shared by every subscriber. A subscriber whose queue is full
when a message arrives is dropped: its queue is cleared and replaced by a single ``Resync`` marker,
so a slow reader never grows memory; it catches up from the event log. A backend that may have
lost messages (Redis connection dropped) makes every local subscriber resync the same way.

A subscriber that can take a message synchronously sets ``sub.direct``: while its queue is empty the
hub hands it each message in the publish's own loop instead of queueing it and waking a task, which is
how one broadcast reaches 5,000 websockets without 5,000 task switches. ``direct`` returns False (or
raises) to refuse a message, which is then queued as usual; the queue being non-empty keeps later
messages behind it, so order holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from typing import Any

from realtime.backends import Backend, backend_from_url

__all__ = ["Hub", "Message", "Resync", "Subscription", "encode"]

logger = logging.getLogger("realtime.hub")

DEFAULT_MAXSIZE = 256


def encode(message: dict[str, Any]) -> str:
    """Return the compact JSON text of ``message`` (UTF-8 kept as is: Chinese names stay short)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Message:
    """One published message, shared by all subscribers: ``text`` as sent, ``data`` decoded on first use."""

    __slots__ = ("channel", "text", "_data", "_asgi", "wire")

    def __init__(self, channel: str, text: str, data: dict[str, Any] | None = None) -> None:
        self.channel = channel
        self.text = text
        self._data = data
        self._asgi: dict[str, str] | None = None
        # The transport's encoding of this message (the websocket endpoint's frames), built by the first
        # subscriber that needs it and shared by the rest.
        self.wire: Any = None

    @property
    def asgi(self) -> dict[str, str]:
        """The ASGI ``websocket.send`` message for ``text``, built once and shared by every connection."""
        if self._asgi is None:
            self._asgi = {"type": "websocket.send", "text": self.text}
        return self._asgi

    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = json.loads(self.text)
        return self._data

    def __repr__(self) -> str:
        return f"Message({self.channel!r}, {self.text!r})"


class Resync:
    """The marker a dropped subscriber reads last: catch up from the log, then subscribe again."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def __repr__(self) -> str:
        return f"Resync({self.reason!r})"


class Subscription:
    """A subscriber's bounded queue of ``Message``; ends with a ``Resync`` if the subscriber is dropped."""

    __slots__ = ("channel", "maxsize", "on_drop", "direct", "_items", "_waiter", "_dropped", "_hub")

    def __init__(self, hub: Hub, channel: str, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self.channel = channel
        self.maxsize = maxsize
        # No deque (about 600 bytes) until something is queued: a subscriber fed directly never needs one.
        self._items: deque[Message | Resync] | tuple[()] = ()
        self._waiter: asyncio.Future[None] | None = None
        self._dropped: asyncio.Event | None = None
        self._hub: Hub | None = hub
        # Called with the Resync when the hub drops this subscriber, so a reader stuck in a send learns at once.
        self.on_drop: Callable[[Resync], None] | None = None
        # Takes a message at once while the queue is empty; returns False to have it queued instead.
        self.direct: Callable[[Message], bool] | None = None

    @property
    def dropped(self) -> bool:
        """Whether the hub has dropped this subscriber (its last item is a ``Resync``)."""
        return self._hub is None

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> Message | Resync:
        """Return the next message, waiting for one; after a ``Resync`` there is nothing more."""
        while not self._items:
            if self._hub is None:
                raise RuntimeError("subscription was dropped and its Resync already read")
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._items.popleft()  # type: ignore[union-attr]

    def get_nowait(self) -> Message | Resync | None:
        """Return the next message, or None if the queue is empty."""
        return self._items.popleft() if self._items else None  # type: ignore[union-attr]

    async def wait_dropped(self) -> None:
        """Return once the hub has dropped this subscriber (overflow or backend reset)."""
        if self._hub is None:
            return
        if self._dropped is None:
            self._dropped = asyncio.Event()
        await self._dropped.wait()

    def __aiter__(self) -> AsyncIterator[Message | Resync]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Message | Resync]:
        while True:
            item = await self.get()
            yield item
            if isinstance(item, Resync):
                return

    def _push(self, message: Message) -> bool:
        """Hand over or queue ``message``; return False if the queue was full and the subscriber is now dropped."""
        direct = self.direct
        if direct is not None and not self._items:
            try:
                if direct(message):
                    return True
            except Exception:
                logger.exception("direct delivery on %s failed; queueing the message", self.channel)
        items = self._items
        if len(items) >= self.maxsize:
            self._drop("slow consumer")
            return False
        if not isinstance(items, deque):
            items = self._items = deque()
        items.append(message)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def _drop(self, reason: str) -> None:
        if self._hub is None:
            return
        self._hub = None
        self.direct = None
        marker = Resync(reason)
        self._items = deque((marker,))
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        if self._dropped is not None:
            self._dropped.set()
        if self.on_drop is not None:
            self.on_drop(marker)


class Hub:
    """Channels of messages with local fan-out to bounded subscriber queues over a pluggable backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self._subscribers: dict[str, dict[Subscription, None]] = {}
        self._backend_channels: set[str] = set()
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.dropped = 0  # subscribers dropped since start (overflow or reset): a gauge for operators
        self._on_event: list[Callable[[str, int], None]] = []  # told (stream, seq) of each event published here

    @classmethod
    def from_url(cls, url: str) -> Hub:
        """Return a hub over the backend named by ``url``: ``memory://`` or ``redis://host:port/db``."""
        return cls(backend_from_url(url))

    async def connect(self) -> None:
        await self.backend.connect(self._deliver, self._reset)

    async def disconnect(self) -> None:
        await self.drain()
        self._reset("server shutting down")
        await self.backend.disconnect()

    async def __aenter__(self) -> Hub:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.disconnect()

    # --- publishing -------------------------------------------------------------------------

    async def publish(self, channel: str, message: dict[str, Any] | str) -> None:
        """Publish ``message`` (a dict, encoded here once, or JSON text) to ``channel``."""
        await self.publish_many([(channel, message)])

    async def publish_many(self, items: Iterable[tuple[str, dict[str, Any] | str]]) -> None:
        """Publish ``(channel, message)`` pairs in order, in as few round trips as the backend allows."""
        encoded = [
            (channel, message, None) if isinstance(message, str) else (channel, encode(message), message)
            for channel, message in items
        ]
        if encoded:
            await self.backend.publish_many(encoded)
            for listener in self._on_event:
                for channel, _, data in encoded:
                    if data is not None and data.get("type") == "event":
                        listener(channel, data["seq"])

    def on_event_published(self, listener: Callable[[str, int], None]) -> None:
        """Call ``listener(stream, seq)`` for every log event this process publishes (see ``realtime.follow``)."""
        self._on_event.append(listener)

    def channels(self) -> set[str]:
        """The channels that have a subscriber in this process."""
        return set(self._subscribers)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a background task the hub keeps alive and awaits in ``drain``."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def drain(self) -> None:
        """Wait until background publishes (after-commit, stats) have finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- subscribing ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def subscribe(self, channel: str, *, maxsize: int = DEFAULT_MAXSIZE) -> AsyncIterator[Subscription]:
        """Yield a subscription to ``channel`` that receives every message published from now on."""
        sub = Subscription(self, channel, maxsize)
        self._subscribers.setdefault(channel, {})[sub] = None
        try:
            if channel not in self._backend_channels:
                async with self._lock:
                    if channel not in self._backend_channels and channel in self._subscribers:
                        await self.backend.subscribe(channel)
                        self._backend_channels.add(channel)
            yield sub
        finally:
            self._remove(sub)
            if channel not in self._subscribers and channel in self._backend_channels:
                async with self._lock:
                    if channel not in self._subscribers and channel in self._backend_channels:
                        self._backend_channels.discard(channel)
                        await self.backend.unsubscribe(channel)

    def subscriber_count(self, channel: str | None = None) -> int:
        if channel is not None:
            return len(self._subscribers.get(channel, ()))
        return sum(len(subs) for subs in self._subscribers.values())

    def _remove(self, sub: Subscription) -> None:
        subs = self._subscribers.get(sub.channel)
        if subs is not None:
            subs.pop(sub, None)
            if not subs:
                del self._subscribers[sub.channel]

    # --- backend callbacks ------------------------------------------------------------------

    def _deliver(self, channel: str, text: str, data: Any) -> None:
        subs = self._subscribers.get(channel)
        if not subs:
            return
        message = Message(channel, text, data)
        overflowed = [sub for sub in subs if not sub._push(message)]
        for sub in overflowed:
            self._remove(sub)
            self.dropped += 1

    def _reset(self, reason: str) -> None:
        for subs in list(self._subscribers.values()):
            for sub in list(subs):
                sub._drop(reason)
                self._remove(sub)
                self.dropped += 1
