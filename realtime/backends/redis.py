"""The Redis backend: one pub/sub connection per process, fanned out locally by the hub.

If that connection drops, every local subscriber is told to resync (the hub's ``reset``): a message
published while we were away is in the log, and the clients catch up from it. The listener
reconnects with exponential backoff, and tells subscribers that joined during the outage to resync
too once it is back. A PING on an idle connection notices a peer that vanished without a reset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from realtime.backends import Backend, Deliver, Reset

__all__ = ["RedisBackend"]

logger = logging.getLogger("realtime.redis")

_PIPELINE_CHUNK = 1000


class RedisBackend(Backend):
    """Publishes through a pooled client and listens on a single pub/sub connection."""

    def __init__(
        self,
        url: str,
        *,
        health_interval: float = 5.0,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        subscribe_timeout: float = 5.0,
        prefix: str = "",
    ) -> None:
        self.url = url
        # Prepended to every channel on the wire (``redis://…?prefix=NAME``), stripped from what is heard.
        self.prefix = f"{prefix}:" if prefix else ""
        self.health_interval = health_interval
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.subscribe_timeout = subscribe_timeout
        # Keeps the connection in subscribed mode even with no local subscriber, so it can be pinged.
        self._alive_channel = f"{self.prefix}realtime:alive:{uuid.uuid4().hex}"
        self._channels: set[str] = set()
        self._confirms: dict[str, list[asyncio.Future[None]]] = {}
        self._publisher: Redis | None = None
        self._listener_client: Redis | None = None
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._deliver: Deliver | None = None
        self._reset: Reset | None = None
        self.reconnects = 0

    async def connect(self, deliver: Deliver, reset: Reset) -> None:
        self._deliver, self._reset = deliver, reset
        self._publisher = Redis.from_url(self.url)
        # No silent retry on the listening connection: a reconnect must be seen, to send resyncs.
        self._listener_client = Redis.from_url(self.url, retry=Retry(NoBackoff(), 0), socket_keepalive=True)
        self._task = asyncio.create_task(self._listen(), name="realtime-redis-listener")
        try:
            await asyncio.wait_for(self._ready.wait(), self.subscribe_timeout)
        except TimeoutError:
            await self.disconnect()
            raise ConnectionError(f"cannot reach Redis at {self.url}") from None

    async def disconnect(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for client in (self._publisher, self._listener_client):
            if client is not None:
                with contextlib.suppress(Exception):
                    await client.aclose()
        self._publisher = self._listener_client = None

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        pubsub = self._pubsub
        if pubsub is None:
            return  # the listener subscribes on reconnect and tells every subscriber to resync
        confirmed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirms.setdefault(channel, []).append(confirmed)
        try:
            await pubsub.subscribe(self.prefix + channel)
            await asyncio.wait_for(confirmed, self.subscribe_timeout)
        except Exception:  # connection trouble: the listener's reset will reach this subscriber
            logger.warning("subscribing to %s was not confirmed", channel)
        finally:
            waiting = self._confirms.get(channel)
            if waiting and confirmed in waiting:
                waiting.remove(confirmed)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        pubsub = self._pubsub
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe(self.prefix + channel)

    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        if self._publisher is None:
            raise RuntimeError("hub is not connected")
        if len(items) == 1:
            channel, text, _ = items[0]
            await self._publisher.publish(self.prefix + channel, text)
            return
        for start in range(0, len(items), _PIPELINE_CHUNK):
            async with self._publisher.pipeline(transaction=False) as pipe:
                for channel, text, _ in items[start : start + _PIPELINE_CHUNK]:
                    pipe.publish(self.prefix + channel, text)
                await pipe.execute()

    async def _listen(self) -> None:
        delay = self.backoff_initial
        first = True
        while True:
            pubsub = self._listener_client.pubsub()  # type: ignore[union-attr]
            try:
                await pubsub.subscribe(self._alive_channel, *(self.prefix + c for c in self._channels))
                self._pubsub = pubsub
                if not first:
                    self.reconnects += 1
                    logger.warning("Redis pub/sub reconnected; subscribers resync")
                    self._reset("backend reconnected")  # type: ignore[misc]
                first = False
                delay = self.backoff_initial
                await self._read(pubsub)
            except asyncio.CancelledError:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                raise
            except Exception as exc:
                was_up = self._pubsub is not None
                self._pubsub = None
                if was_up:
                    logger.warning("Redis pub/sub connection lost (%s); subscribers resync", exc)
                    self._reset("backend connection lost")  # type: ignore[misc]
                for waiting in self._confirms.values():
                    for confirmed in waiting:
                        if not confirmed.done():
                            confirmed.set_exception(ConnectionError("pub/sub connection lost"))
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff_max)

    async def _read(self, pubsub: Any) -> None:
        deliver = self._deliver
        skip = len(self.prefix)
        last_seen = time.monotonic()
        pinged = False
        while True:
            message = await pubsub.get_message(timeout=self.health_interval)
            now = time.monotonic()
            if message is None:
                if now - last_seen > 3 * self.health_interval:
                    raise ConnectionError("no answer to PING")
                if not pinged:
                    await pubsub.ping()
                    pinged = True
                continue
            last_seen, pinged = now, False
            kind = message["type"]
            if kind == "message":
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                data = message["data"]
                deliver(  # type: ignore[misc]
                    channel[skip:], data.decode() if isinstance(data, bytes) else data, None,
                )
            elif kind == "subscribe":
                channel = message["channel"]
                channel = channel.decode() if isinstance(channel, bytes) else channel
                if channel == self._alive_channel:
                    self._ready.set()
                for confirmed in self._confirms.pop(channel[skip:], []):
                    if not confirmed.done():
                        confirmed.set_result(None)
