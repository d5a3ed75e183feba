"""The websocket endpoint: authenticated live status with replay from the event log, each event exactly once.

Mount one ``RealtimeEndpoint`` on a websocket route; the app supplies what realtime cannot know::

    endpoint = RealtimeEndpoint(
        hub=hub, sessionmaker=sessionmaker,
        authenticate=lambda token: principal_or_none,      # sync or async
        authorize=lambda principal, channel: bool,         # may this principal watch this channel?
        snapshot=lambda channel, principal: {...},         # current state, JSON-ready
        filter=lambda principal, message: message_or_none, # redact per role; return a NEW dict to change it
        allowed_origins={"https://cmd.example.gov.cn"},
    )
    app.add_api_websocket_route("/ws", endpoint)

Protocol
--------
Connect to ``/ws?token=…``, or connect without it and send ``{"type": "auth", "token": "…"}`` first
(within ``auth_timeout`` seconds). A channel is an event stream name: ``activation:12``,
``unit:330102001001``, ``person:4711``.

Client → server::

    {"type": "subscribe", "channel": "activation:12", "since": 41}    # since: last seq seen, or null
    {"type": "unsubscribe", "channel": "activation:12"}
    {"type": "pong"}                                                   # answer to a ping
    {"type": "ping"}                                                   # server answers {"type": "pong"}

Server → client::

    {"type": "snapshot", "channel": "activation:12", "seq": 41, "data": {...}}
    {"type": "event", "stream": "activation:12", "seq": 42, "event": "order.acknowledged",
     "at": "2024-07-01T08:00:01.123456+00:00", "body": {"order": 7, "post": 3}}
    {"type": "stats", "channel": "activation:12", "at": "…", "total": {...}, "communities": {...}}
    {"type": "ping", "at": "…"}
    {"type": "resync", "channel": "activation:12", "reason": "slow consumer"}

- With ``since: null`` the server sends a ``snapshot`` (its ``seq`` is the stream's head, read
  before the snapshot was taken) and then live events with higher seqs. An event that happened while
  the snapshot was taken may be both in it and sent after it: apply events idempotently.
- With ``since: n`` the server replays every event with seq > n from the database, in order, then
  streams live ones: every event exactly once, in seq order, no gap. If ``n`` is ahead of the stream
  (database restored) or more than ``replay_limit`` behind, a ``snapshot`` comes instead.
- ``resync`` means the client fell behind (its bounded queue overflowed) or the server lost its
  pub/sub link; the server then closes with 1008 "resync". Reconnect with backoff and subscribe
  with ``since`` = the last seq applied.
- ``filter`` sees every message for a client (events, replayed ones too, and stats) and returns it
  unchanged (sent as the shared pre-encoded text), a new dict (encoded for this client) or None (skipped).
- The server sends ``ping`` every ``heartbeat_interval`` seconds; a client that has sent nothing
  (pong or any message) within ``heartbeat_timeout`` after a ping is closed with 1011 "heartbeat timeout".

Close codes: 1008 policy (origin not allowed, missing/wrong/expired token, channel out of scope,
resync), 1003 malformed client message (not JSON, unknown type, bad field), 1011 server error.

Fan-out
-------
Under uvicorn's ``websockets-sansio`` protocol a live subscriber whose queue is empty and whose socket
is writable takes each message in the hub's publishing loop (``Subscription.direct``): the message's
websocket frame is built once per process and written to every such transport, as
``websockets.broadcast`` does, with no task woken per subscriber. A ``filter`` result other than the
message itself is encoded once per distinct result, not per client. A gap in seqs, a socket whose
buffer is full, or an async ``filter`` sends the message to the subscriber's bounded queue instead,
drained by its pump task in order until the queue is empty again. These frames skip ASGI middleware;
the handshake, snapshots, replays and closes still go through ASGI. On other servers every message
takes the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.websockets import WebSocket, WebSocketDisconnect

from realtime import log
from realtime.fanout import POLICY, Feed, Wire, text_frame
from realtime.hub import DEFAULT_MAXSIZE, Hub, encode

__all__ = ["POLICY", "UNSUPPORTED", "INTERNAL", "RealtimeEndpoint"]

logger = logging.getLogger("realtime.websocket")

# Distinct filter results per message whose frames are kept for the next client (one per role, say).

UNSUPPORTED = 1003
INTERNAL = 1011

Principal = Any
MaybeAwaitable = Any


async def _call(fn: Callable[..., MaybeAwaitable], *args: Any) -> Any:
    result = fn(*args)
    if inspect.isawaitable(result):
        result = await result
    return result


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code, self.reason = code, reason


class RealtimeEndpoint:
    """An ASGI websocket handler: call it with a Starlette ``WebSocket`` (or mount it as a route)."""

    def __init__(
        self,
        *,
        hub: Hub,
        sessionmaker: async_sessionmaker[AsyncSession],
        authenticate: Callable[[str], Awaitable[Principal | None] | Principal | None],
        authorize: Callable[[Principal, str], Awaitable[bool] | bool],
        snapshot: Callable[[str, Principal], Awaitable[dict[str, Any]] | dict[str, Any]],
        filter: Callable[[Principal, dict[str, Any]], dict[str, Any] | None] | None = None,
        allowed_origins: Collection[str] | None = None,
        heartbeat_interval: float = 20.0,
        heartbeat_timeout: float = 10.0,
        auth_timeout: float = 10.0,
        close_timeout: float = 5.0,
        queue_size: int = DEFAULT_MAXSIZE,
        replay_limit: int = 10_000,
        replay_page: int = 500,
        max_subscriptions: int = 16,
    ) -> None:
        self.hub = hub
        self.sessionmaker = sessionmaker
        self.authenticate = authenticate
        self.authorize = authorize
        self.snapshot = snapshot
        self.filter = filter
        # None allows any origin; a request without an Origin header (not a browser) is always allowed,
        # since the check guards against other sites' pages riding a user's browser.
        self.allowed_origins = None if allowed_origins is None else frozenset(allowed_origins)
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.auth_timeout = auth_timeout
        self.close_timeout = close_timeout
        self.queue_size = queue_size
        self.replay_limit = replay_limit
        self.replay_page = replay_page
        self.max_subscriptions = max_subscriptions
        # An async filter cannot run in the hub's synchronous fan-out: its clients always take the queue.
        self._direct_ok = filter is None or not inspect.iscoroutinefunction(filter)
        self._fills: dict[tuple[str, int, int], asyncio.Task[list[dict[str, Any]]]] = {}

    async def __call__(self, websocket: WebSocket) -> None:
        await websocket.accept()
        try:
            origin = websocket.headers.get("origin")
            if self.allowed_origins is not None and origin is not None and origin not in self.allowed_origins:
                raise _Close(POLICY, "origin not allowed")
            principal = await self._authenticate(websocket)
            connection = _Connection(self, websocket, principal)
            await connection.run()
        except _Close as close:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(close.code, close.reason), self.close_timeout)
        except WebSocketDisconnect:
            pass
        except Exception:
            logger.exception("websocket failed before subscribing")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(websocket.close(INTERNAL, "internal error"), self.close_timeout)

    async def _authenticate(self, websocket: WebSocket) -> Principal:
        token = websocket.query_params.get("token")
        if not token:
            try:
                message = await asyncio.wait_for(websocket.receive(), self.auth_timeout)
            except TimeoutError:
                raise _Close(POLICY, "authentication required") from None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data = _parse(message)
            if data.get("type") != "auth":
                raise _Close(POLICY, "authentication required")
            token = data.get("token")
            if not isinstance(token, str) or not token:
                raise _Close(UNSUPPORTED, "token must be a string")
        principal = await _call(self.authenticate, token)
        if principal is None:
            raise _Close(POLICY, "unauthorized")
        return principal

    async def _gap(self, stream: str, after: int, upto: int) -> list[dict[str, Any]]:
        """Return the event messages after ``after`` up to ``upto`` from the log, one query per gap per process."""
        key = (stream, after, upto)
        task = self._fills.get(key)
        if task is None:
            # A task of its own, so one waiting connection going away does not cancel the others' read.
            task = asyncio.get_running_loop().create_task(self._read_gap(stream, after, upto))
            self._fills[key] = task
            task.add_done_callback(lambda _: self._fills.pop(key, None))
        return await asyncio.shield(task)

    async def _read_gap(self, stream: str, after: int, upto: int) -> list[dict[str, Any]]:
        async with self.sessionmaker() as session:
            events = await log.read_since(session, stream, after, limit=upto - after)
        return [e.to_message() for e in events]


def _parse(message: dict[str, Any]) -> dict[str, Any]:
    text = message.get("text")
    if text is None:
        raise _Close(UNSUPPORTED, "text frames only")
    try:
        data = json.loads(text)
    except ValueError:
        raise _Close(UNSUPPORTED, "not JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise _Close(UNSUPPORTED, "a message is an object with a type")
    return data


class _Connection:
    """One client: a reader for its messages, a heartbeat timer, and one pump per subscribed channel."""

    __slots__ = (
        "endpoint", "websocket", "principal", "loop", "last_heard", "pumps", "done", "wire", "heartbeat", "pinging",
    )

    def __init__(self, endpoint: RealtimeEndpoint, websocket: WebSocket, principal: Principal) -> None:
        self.endpoint = endpoint
        self.websocket = websocket
        self.principal = principal
        self.loop = asyncio.get_running_loop()
        self.last_heard = self.loop.time()
        self.pumps: dict[str, asyncio.Task[None]] = {}
        self.wire = Wire.of(websocket) if endpoint._direct_ok else None
        self.heartbeat: asyncio.TimerHandle | None = None
        self.pinging: asyncio.Task[None] | None = None
        self.done: asyncio.Future[tuple[int, str, dict[str, Any] | None] | None] = self.loop.create_future()

    def finish(self, code: int | None = None, reason: str = "", final: dict[str, Any] | None = None) -> None:
        """End the connection: close with ``code`` after sending ``final``, or just stop if the peer left."""
        if not self.done.done():
            self.done.set_result(None if code is None else (code, reason, final))

    async def run(self) -> None:
        reading = self.loop.create_task(self._guard(self._read()))
        self.heartbeat = self.loop.call_later(self.endpoint.heartbeat_interval, self._ping)
        try:
            outcome = await self.done
        finally:
            self.heartbeat.cancel()
            tasks = [reading, *self.pumps.values(), *([self.pinging] if self.pinging is not None else [])]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if outcome is not None:
            code, reason, final = outcome
            timeout = self.endpoint.close_timeout
            with contextlib.suppress(Exception):
                if final is not None:
                    await asyncio.wait_for(self.websocket.send_text(encode(final)), timeout)
                await asyncio.wait_for(self.websocket.close(code, reason), timeout)

    async def _guard(self, coro: Awaitable[None]) -> None:
        try:
            await coro
        except asyncio.CancelledError:
            raise
        except _Close as close:
            self.finish(close.code, close.reason)
        except (WebSocketDisconnect, OSError):
            self.finish()
        except Exception:
            if self.websocket.client_state.name == "DISCONNECTED":
                self.finish()
            else:
                logger.exception("websocket connection failed")
                self.finish(INTERNAL, "internal error")

    async def _read(self) -> None:
        endpoint = self.endpoint
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                self.finish()
                return
            self.last_heard = self.loop.time()
            data = _parse(message)
            kind = data["type"]
            if kind == "pong":
                continue
            if kind == "ping":
                await self.websocket.send_text('{"type":"pong"}')
            elif kind == "subscribe":
                channel, since = data.get("channel"), data.get("since")
                if not isinstance(channel, str) or not channel:
                    raise _Close(UNSUPPORTED, "channel must be a string")
                if since is not None and (type(since) is not int or since < 0):
                    raise _Close(UNSUPPORTED, "since must be a seq (integer >= 0) or null")
                if not await _call(endpoint.authorize, self.principal, channel):
                    raise _Close(POLICY, "channel out of scope")
                old = self.pumps.pop(channel, None)
                if old is not None:
                    old.cancel()
                    await asyncio.gather(old, return_exceptions=True)
                if len(self.pumps) >= endpoint.max_subscriptions:
                    raise _Close(POLICY, "too many subscriptions")
                feed = Feed(self, channel)
                self.pumps[channel] = self.loop.create_task(self._guard(feed.run(since)))
            elif kind == "unsubscribe":
                task = self.pumps.pop(data.get("channel"), None)  # type: ignore[arg-type]
                if task is not None:
                    task.cancel()
            elif kind == "auth":
                continue  # already authenticated by query token; harmless
            else:
                raise _Close(UNSUPPORTED, f"unknown message type {kind!r}")

    # The heartbeat is a timer, not a task per connection: ping, look for an answer a timeout later, repeat.

    def _ping(self) -> None:
        if self.done.done():
            return
        sent_at = self.loop.time()
        ping = encode({"type": "ping", "at": datetime.now(UTC).isoformat()})
        if self.wire is not None and self.wire.ready():
            self.wire.write(text_frame(ping))
        elif self.pinging is None or self.pinging.done():
            self.pinging = self.loop.create_task(self._guard(self._send_ping(ping)))
        self.heartbeat = self.loop.call_later(self.endpoint.heartbeat_timeout, self._check_heard, sent_at)

    async def _send_ping(self, ping: str) -> None:
        try:
            await asyncio.wait_for(self.websocket.send_text(ping), self.endpoint.heartbeat_timeout)
        except TimeoutError:
            raise _Close(INTERNAL, "heartbeat timeout") from None

    def _check_heard(self, sent_at: float) -> None:
        if self.last_heard < sent_at:
            self.finish(INTERNAL, "heartbeat timeout")
        else:
            self.heartbeat = self.loop.call_later(self.endpoint.heartbeat_interval, self._ping)

    async def _catch_up(self, channel: str, since: int | None, send: Callable[..., Awaitable[None]]) -> int:
        endpoint = self.endpoint
        async with endpoint.sessionmaker() as session:
            head = await log.head(session, channel)
            if since is not None and since <= head and head - since <= endpoint.replay_limit:
                last = since
                while last < head:
                    events = await log.read_since(session, channel, last, limit=endpoint.replay_page)
                    if not events:
                        break
                    for event in events:
                        await send(event.to_message(), None)
                    last = events[-1].seq
                return last
        data = await _call(endpoint.snapshot, channel, self.principal)
        await self.websocket.send_text(encode({"type": "snapshot", "channel": channel, "seq": head, "data": data}))
        return head
