"""realtime: how status travels — event log, hub with bounded subscriber queues, websocket endpoints."""
