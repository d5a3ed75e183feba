"""The live half of a websocket connection: one feed per channel and frames written straight to the socket.

A :class:`Feed` catches up from the event log, then takes live messages exactly once, in seq order.
While its connection's socket is writable it receives each message synchronously from the hub's
publishing loop and writes a frame built once per message (once per distinct filter result), as
``websockets.broadcast`` does; otherwise the message waits in the subscriber's bounded queue.
:class:`Wire` is the uvicorn ``websockets-sansio`` transport under a connection, where there is one.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from starlette.websockets import WebSocket

from realtime.hub import Message, Resync, encode

if TYPE_CHECKING:
    from realtime.websocket import _Connection

__all__ = ["Feed", "Wire", "text_frame"]

POLICY = 1008  # the policy close code (also realtime.websocket.POLICY)
_MAX_VARIANTS = 8


class Feed:
    """One channel of a connection: catch up from the log, then live messages exactly once, in seq order."""

    __slots__ = ("connection", "channel", "last")

    def __init__(self, connection: _Connection, channel: str) -> None:
        self.connection = connection
        self.channel = channel
        self.last = 0  # seq of the last event sent (or skipped by the filter)

    def dropped(self, marker: Resync) -> None:
        self.connection.finish(POLICY, "resync", {"type": "resync", "channel": self.channel, "reason": marker.reason})

    async def run(self, since: int | None) -> None:
        """Pump the subscription: the catch-up, then whatever the hub queued rather than handed over."""
        connection = self.connection
        endpoint = connection.endpoint
        direct = self.offer if connection.wire is not None else None
        # Subscribe first, then read the log: whatever commits from now on is either in the replay or
        # in the buffer, and the buffer's copies of replayed events are skipped by seq.
        async with endpoint.hub.subscribe(self.channel, maxsize=endpoint.queue_size) as sub:
            sub.on_drop = self.dropped
            self.last = await connection._catch_up(self.channel, since, self.send)
            while True:
                item = sub.get_nowait()
                if item is None:
                    # Idle and in order: let the hub write to the socket directly until it queues again.
                    sub.direct = direct
                    try:
                        item = await sub.get()
                    finally:
                        sub.direct = None
                if isinstance(item, Resync):
                    self.dropped(item)
                    return
                data = item.data
                if data.get("type") == "event":
                    seq = data["seq"]
                    if seq <= self.last:
                        continue
                    if seq > self.last + 1:
                        # Publishes of two transactions may cross (two instances, two tasks): the
                        # earlier one is committed already, since seqs of a stream are allocated
                        # under its row lock until commit, so fetch it from the log.
                        for missing in await endpoint._gap(self.channel, self.last, seq - 1):
                            await self.send(missing, None)
                    self.last = seq
                await self.send(data, item)

    async def send(self, data: dict[str, Any], message: Message | None) -> None:
        """Send ``data`` through ASGI as the filter shows it; ``message`` is its shared encoding, if any."""
        connection = self.connection
        redact = connection.endpoint.filter
        if redact is not None:
            shown = redact(connection.principal, data)
            if inspect.isawaitable(shown):
                shown = await shown
            if shown is None:
                return
            if shown is not data:
                message = None
                data = shown
        # The raw ASGI send with one shared, pre-built ASGI message per publish when the filter left it alone.
        asgi_send = connection.websocket._send
        if message is not None:
            await asgi_send(message.asgi)
        else:
            await asgi_send({"type": "websocket.send", "text": encode(data)})

    def offer(self, message: Message) -> bool:
        """Write ``message`` now if it is next in order and the socket takes it at once; else False (queue it).

        Runs in the hub's publishing loop, once per subscriber: keep it lean.
        """
        wire = self.connection.wire
        if not wire.ready() or self.connection.done.done():
            return False
        data = message.data
        seq = data.get("seq") if data.get("type") == "event" else None
        if seq is not None:
            if seq <= self.last:
                return True  # replayed already
            if seq != self.last + 1:
                return False  # a gap: the pump fills it from the log
        frames = message.wire
        if frames is None:
            frames = message.wire = [None]
        redact = self.connection.endpoint.filter
        shown = data if redact is None else redact(self.connection.principal, data)
        if shown is data:
            frame = frames[0]
            if frame is None:
                frame = frames[0] = text_frame(message.text)
        elif shown is None:
            frame = None
        elif isinstance(shown, dict):
            frame = variant(frames, shown)
        else:  # an awaitable from a filter that is not a coroutine function: the pump awaits its own call
            if inspect.iscoroutine(shown):
                shown.close()
            return False
        if frame is not None:
            wire.write(frame)
        if seq is not None:
            self.last = seq
        return True


def variant(frames: list[Any], shown: dict[str, Any]) -> bytes:
    """Return the frame of a filter's result, reusing one built for an equal result of the same message."""
    for i in range(1, len(frames)):
        other, frame = frames[i]
        if other == shown:
            return frame
    frame = text_frame(encode(shown))
    if len(frames) <= _MAX_VARIANTS:
        frames.append((shown, frame))
    return frame


def text_frame(text: str) -> bytes:
    """Return the unmasked, uncompressed websocket text frame (RFC 6455) a server sends for ``text``."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        head = bytes((0x81, n))
    elif n < 65536:
        head = b"\x81\x7e" + n.to_bytes(2, "big")
    else:
        head = b"\x81\x7f" + n.to_bytes(8, "big")
    return head + payload


class Wire:
    """Synchronous writes of ready frames to a uvicorn ``websockets-sansio`` connection's transport."""

    __slots__ = ("protocol", "transport", "writable")

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.writable = protocol.writable

    @classmethod
    def of(cls, websocket: WebSocket) -> Wire | None:
        """Return the wire under ``websocket``, or None on a server or configuration it does not know."""
        try:
            from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
        except ImportError:
            return None
        # Starlette wraps ``send`` in closures but passes the server's bound ``receive`` through.
        protocol = getattr(websocket._receive, "__self__", None)
        if not isinstance(protocol, WebSocketsSansIOProtocol):
            return None
        try:
            if protocol.conn.extensions:  # per-message deflate: frames differ per connection
                return None
            return cls(protocol)
        except AttributeError:  # another uvicorn than the one this was written against
            return None

    def ready(self) -> bool:
        """Whether a frame written now goes out at once, in order after everything sent before."""
        protocol = self.protocol
        return (
            self.writable.is_set()
            and not protocol.close_sent
            and not protocol.disconnected
            and not self.transport.is_closing()
        )

    def write(self, frame: bytes) -> None:
        self.transport.write(frame)
