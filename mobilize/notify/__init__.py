"""Notifications (通知): an outbox written with the change, a delivery worker, channels behind one interface.

Services call :func:`enqueue` / :func:`enqueue_many` inside their transaction; the app's
:class:`Notifier` delivers through the channels (:class:`LogChannel`, :class:`InAppChannel`,
:class:`SmsGateway`); the phone page reads :func:`inbox`.
"""

from mobilize.notify.channels import (
    Channel,
    InAppChannel,
    LogChannel,
    Message,
    Permanent,
    Retryable,
    SmsGateway,
    make_channels,
)
from mobilize.notify.models import OutboxMessage
from mobilize.notify.outbox import (
    CHANNELS,
    Notice,
    enqueue,
    enqueue_many,
    inbox,
    status_counts,
)
from mobilize.notify.templates import KINDS, render
from mobilize.notify.worker import DeliveryReport, Notifier, RetryPolicy, deliver_due

__all__ = [
    "CHANNELS",
    "KINDS",
    "Channel",
    "DeliveryReport",
    "InAppChannel",
    "LogChannel",
    "Message",
    "Notice",
    "Notifier",
    "OutboxMessage",
    "Permanent",
    "RetryPolicy",
    "Retryable",
    "SmsGateway",
    "deliver_due",
    "enqueue",
    "enqueue_many",
    "inbox",
    "make_channels",
    "render",
    "status_counts",
]
