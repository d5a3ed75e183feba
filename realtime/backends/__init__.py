"""Pub/sub backends of the hub, chosen by URL scheme: ``memory://`` (one process) and ``redis://``.

A backend only moves pre-encoded text between processes; the hub keeps the local subscribers and
their bounded queues. The backend calls ``deliver(channel, text, data)`` once per message that
reaches this process (``data`` is the decoded message when the backend has it, else None) and
``reset(reason)`` when messages may have been lost (connection dropped): every local subscriber is
then told to resync from the log.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["Backend", "Deliver", "Reset", "backend_from_url"]

Deliver = Callable[[str, str, Any], None]
Reset = Callable[[str], None]


class Backend(ABC):
    """Moves messages between the processes that share a hub URL."""

    @abstractmethod
    async def connect(self, deliver: Deliver, reset: Reset) -> None:
        """Start delivering messages of subscribed channels to ``deliver``."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Stop delivering and release connections."""

    @abstractmethod
    async def subscribe(self, channel: str) -> None:
        """Start receiving ``channel``; returns once messages published from now on will arrive."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None:
        """Stop receiving ``channel``."""

    @abstractmethod
    async def publish_many(self, items: Sequence[tuple[str, str, Any]]) -> None:
        """Publish ``(channel, text, data)`` triples in order; ``data`` is the decoded message."""


def backend_from_url(url: str) -> Backend:
    """Return the backend for ``url`` (``memory://`` or ``redis://host:port/db[?prefix=NAME]``).

    Redis pub/sub channels are global to the server (not per database number), so deployments (or test
    workers) sharing one Redis keep apart by a channel ``prefix``; instances that must hear each other use
    the same one.
    """
    scheme = url.split("://", 1)[0].lower()
    if scheme == "memory":
        from realtime.backends.memory import MemoryBackend

        return MemoryBackend()
    if scheme in {"redis", "rediss", "unix"}:
        from realtime.backends.redis import RedisBackend

        from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        prefix = "".join(v for k, v in query if k == "prefix")
        rest = urlencode([(k, v) for k, v in query if k != "prefix"])
        return RedisBackend(urlunsplit(parts._replace(query=rest)), prefix=prefix)
    raise ValueError(f"unknown hub backend {url!r}: use memory:// or redis://host:port/db")
