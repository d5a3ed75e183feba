// The live-status websocket of one channel: subscribe, answer pings, and after a resync or a dropped
// connection reconnect with backoff and catch up from the server's event log.
//
// Every (re)connection first subscribes with since=null: the snapshot brings the stats as they are now
// (a replay carries events, not stats). Then it subscribes again with since = the last seq applied before
// the drop (on the first connection: the recent past, for the timeline), and the server replays the gap
// from its event log, each event once, in order, before the live ones. Replayed events at or below the
// snapshot's seq are history: already counted in the snapshot, they only fill the timeline.
export class LiveSocket {
  /**
   * handlers: snapshot(msg), event(msg, {history}), stats(msg), state("connecting"|"live"|"reconnecting"|"closed", info)
   * history: how many past events to fetch for a timeline after the first snapshot.
   */
  constructor({ token, channel, handlers, history = 200 }) {
    this.token = token; this.channel = channel; this.h = handlers; this.history = history;
    this.lastSeq = null;      // the last seq applied (snapshot head or event)
    this.snapshotSeq = null;  // events at or below it are history (already in the snapshot)
    this.attempt = 0; this.stopped = false; this.ws = null; this.timer = null;
    this.connect();
  }

  url() {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    return `${proto}//${location.host}/api/v1/ws?token=${encodeURIComponent(this.token())}`;
  }

  connect() {
    if (this.stopped) return;
    this.h.state(this.attempt ? "reconnecting" : "connecting", { attempt: this.attempt });
    let ws;
    try { ws = new WebSocket(this.url()); } catch (e) { this.retry(); return; }
    this.ws = ws;
    ws.onopen = () => {
      this.replayFrom = this.lastSeq; // null on the first connection
      this.send({ type: "subscribe", channel: this.channel, since: null });
    };
    ws.onmessage = (m) => this.receive(m.data);
    ws.onclose = (e) => { if (this.ws === ws) { this.ws = null; this.retry(e); } };
    ws.onerror = () => { /* onclose follows */ };
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  receive(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    switch (m.type) {
      case "ping": this.send({ type: "pong" }); return;
      case "snapshot": {
        const first = this.snapshotSeq === null;
        this.lastSeq = m.seq; this.snapshotSeq = m.seq;
        this.h.state("live", {});
        this.h.snapshot(m);
        // The gap since the drop (or, the first time, the recent past) from the event log.
        const from = first ? (this.history ? Math.max(0, m.seq - this.history) : null) : this.replayFrom;
        this.replayFrom = null;
        if (from !== null && from !== undefined && from < m.seq) {
          this.send({ type: "subscribe", channel: this.channel, since: from });
        }
        this.attempt = 0;
        return;
      }
      case "event": {
        if (this.attempt) { this.attempt = 0; this.h.state("live", {}); }
        const history = this.lastSeq !== null && m.seq <= this.lastSeq;
        if (!history) this.lastSeq = m.seq;
        this.h.event(m, { history });
        return;
      }
      case "stats": this.h.stats(m); return;
      case "resync": this.h.state("reconnecting", { resync: true }); return; // the server closes next
      default: return;
    }
  }

  retry(closeEvent) {
    if (this.stopped) return;
    this.attempt += 1;
    const delay = Math.min(15000, 500 * 2 ** Math.min(this.attempt - 1, 5)) * (0.75 + Math.random() * 0.5);
    this.h.state("reconnecting", { attempt: this.attempt, code: closeEvent && closeEvent.code, delay });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Reconnect at once (the browser says the network is back). */
  nudge() {
    if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer); this.connect();
  }

  close() {
    this.stopped = true; clearTimeout(this.timer);
    if (this.ws) { const ws = this.ws; this.ws = null; ws.close(1000); }
    this.h.state("closed", {});
  }
}
