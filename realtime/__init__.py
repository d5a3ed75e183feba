"""realtime: how status travels — event log, hub with bounded subscriber queues, websocket endpoints.

Imports nothing of the app: the app passes in its sessionmaker and the callables the websocket
endpoint needs (see ``realtime.websocket`` for the protocol).
"""

from realtime.hub import Hub, Message, Resync, Subscription
from realtime.log import append, append_many, bind_hub, head, read_since
from realtime.models import Event, NewEvent, metadata
from realtime.stats import StatsTicker, tally
from realtime.websocket import RealtimeEndpoint

__all__ = [
    "Event",
    "Hub",
    "Message",
    "NewEvent",
    "RealtimeEndpoint",
    "Resync",
    "StatsTicker",
    "Subscription",
    "append",
    "append_many",
    "bind_hub",
    "head",
    "metadata",
    "read_since",
    "tally",
]
