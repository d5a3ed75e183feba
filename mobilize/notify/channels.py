"""Channels a notification travels by, behind one interface: ``await channel.send(message)``.

``send`` returns when the channel has taken the message, or raises :class:`Retryable` (try again
later: a timeout, HTTP 429 or 5xx; ``retry_after`` if the other side said when) or
:class:`Permanent` (it will never go: no phone number, HTTP 400). Anything else a channel raises is
treated as retryable by the worker.

- :class:`LogChannel` writes the message, link included, to the ``mobilize.notify`` log: the demo's
  way to show each person's link (phone numbers masked).
- :class:`InAppChannel` delivers by marking the row sent: the phone page reads the person's
  notifications (:func:`mobilize.notify.outbox.inbox`); an optional ``publish`` pushes it live.
- :class:`SmsGateway` posts JSON to a configurable HTTP gateway with ``Idempotency-Key:
  outbox-<id>``, so a gateway that got a request whose answer was lost does not send it twice.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from mobilize.logs import mask_text
from mobilize.notify.templates import SMS_BODY_LIMIT, Rendered, render

__all__ = [
    "DEFAULT_SMS_TEMPLATE",
    "Channel",
    "InAppChannel",
    "LogChannel",
    "Message",
    "Permanent",
    "Retryable",
    "SmsGateway",
    "make_channels",
]

log = logging.getLogger("mobilize.notify")

#: The gateway's request body; ``{phone}``, ``{text}``, ``{id}`` (the idempotency key) and ``{kind}``
#: are replaced inside its strings.
DEFAULT_SMS_TEMPLATE = '{"to": "{phone}", "text": "{text}", "id": "{id}"}'
#: Statuses that ask to come back later (besides every 5xx): timeout, in-flight duplicate, too early, too many.
_RETRY_STATUSES = frozenset({408, 409, 425, 429})


class Retryable(Exception):
    """The message did not go this time; try again (after ``retry_after`` seconds if given)."""

    def __init__(self, reason: str, *, retry_after: float | None = None):
        super().__init__(reason)
        self.retry_after = retry_after


class Permanent(Exception):
    """The message can never go through this channel; the row ends ``failed``."""


@dataclass(frozen=True, slots=True)
class Message:
    """One outbox row as a channel sees it; ``phone`` is looked up at send time, never stored."""

    outbox_id: int
    kind: str
    channel: str
    person_id: int
    phone: str | None
    payload: Mapping[str, Any]
    activation_id: int | None = None
    order_id: int | None = None
    lang: str = "zh-CN"

    @property
    def idempotency_key(self) -> str:
        return f"outbox-{self.outbox_id}"

    @property
    def drill(self) -> bool:
        return bool(self.payload.get("drill"))

    def render(self, *, max_body: int | None = None) -> Rendered:
        """Return the message's text in its language (a drill prefixed 【演练】)."""
        return render(self.kind, self.payload, lang=self.payload.get("lang", self.lang), drill=self.drill,
                      max_body=max_body)


class Channel:
    """A way to reach a person; subclasses implement :meth:`send`."""

    name: str = "channel"

    async def send(self, message: Message) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release what the channel holds (connections); the default holds nothing."""


class LogChannel(Channel):
    """Write each message, with its link, to the log (demo and development; phones masked)."""

    name = "log"

    def __init__(self, logger: logging.Logger | None = None, level: int = logging.INFO):
        self.logger = logger or log
        self.level = level

    async def send(self, message: Message) -> None:
        text = message.render().text
        phone = mask_text(message.phone) if message.phone else "-"
        self.logger.log(self.level, "通知 notify %s → person %s (%s): %s", message.kind, message.person_id, phone,
                        mask_text(text))


class InAppChannel(Channel):
    """Deliver to the phone page: the row marked ``sent`` is the delivery; ``publish`` pushes it live.

    ``publish`` (e.g. onto the realtime hub) is best effort: the page reads the database when it
    (re)connects, so a failed push loses nothing and is not retried. ``publish`` gets the whole
    :class:`Message`: forward its rendered text to the person's own subscription, never ``phone``.
    """

    name = "inapp"

    def __init__(self, publish: Callable[[Message], Awaitable[None]] | None = None):
        self.publish = publish

    async def send(self, message: Message) -> None:
        if self.publish is None:
            return
        try:
            await self.publish(message)
        except Exception:
            log.warning("in-app push of outbox %s failed; the phone page shows it on reload", message.outbox_id,
                        exc_info=True)


def _header(auth_header: str | None) -> dict[str, str]:
    """Return the auth header as a dict: ``"X-Api-Key: k"`` → that header; a bare value → Authorization."""
    if not auth_header:
        return {}
    name, sep, value = auth_header.partition(":")
    if sep and name.strip() and " " not in name.strip():
        return {name.strip(): value.strip()}
    return {"Authorization": auth_header.strip()}


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _fill(node: Any, values: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        for name, value in values.items():
            node = node.replace("{" + name + "}", value)
        return node
    if isinstance(node, list):
        return [_fill(item, values) for item in node]
    if isinstance(node, dict):
        return {key: _fill(item, values) for key, item in node.items()}
    return node


class SmsGateway(Channel):
    """Send SMS through an HTTP gateway: POST ``template`` as JSON to ``url`` with ``auth_header``.

    429, 408, 409, 425, every 5xx, timeouts and connection errors are :class:`Retryable` (honouring
    ``Retry-After``); other 4xx are :class:`Permanent`. Every request carries ``Idempotency-Key:
    outbox-<id>``, the same on every retry of one message.
    """

    name = "sms"

    def __init__(self, url: str, *, auth_header: str | None = None, template: str | None = None,
                 timeout: float = 10.0, max_body: int = SMS_BODY_LIMIT,
                 transport: httpx.AsyncBaseTransport | None = None):
        self.url = url
        self.headers = _header(auth_header)
        try:
            self.template = json.loads(template or DEFAULT_SMS_TEMPLATE)
        except json.JSONDecodeError as exc:
            raise ValueError(f"SMS template is not JSON: {exc}") from None
        self.max_body = max_body
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    def body(self, message: Message) -> Any:
        """Return the JSON body the gateway gets for ``message``."""
        text = message.render(max_body=self.max_body).text
        return _fill(self.template, {"phone": message.phone or "", "text": text, "id": message.idempotency_key,
                                     "kind": message.kind})

    async def send(self, message: Message) -> None:
        if not message.phone:
            raise Permanent("no phone number for this person")
        headers = {**self.headers, "Idempotency-Key": message.idempotency_key}
        try:
            response = await self._client.post(self.url, json=self.body(message), headers=headers)
        except httpx.TimeoutException as exc:
            raise Retryable(f"gateway timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise Retryable(f"gateway unreachable ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status < 300:
            return
        detail = f"gateway answered HTTP {status}: {response.text[:200]}"
        if status in _RETRY_STATUSES or status >= 500:
            raise Retryable(detail, retry_after=_retry_after(response.headers.get("Retry-After")))
        raise Permanent(detail)

    async def aclose(self) -> None:
        await self._client.aclose()


def make_channels(*, sms_url: str | None = None, sms_auth_header: str | None = None, sms_template: str | None = None,
                  sms_timeout: float = 10.0,
                  publish: Callable[[Message], Awaitable[None]] | None = None) -> dict[str, Channel]:
    """Return the channels by name: ``log`` and ``inapp`` always, ``sms`` when a gateway URL is set."""
    channels: dict[str, Channel] = {"log": LogChannel(), "inapp": InAppChannel(publish)}
    if sms_url:
        channels["sms"] = SmsGateway(sms_url, auth_header=sms_auth_header, template=sms_template, timeout=sms_timeout)
    return channels
