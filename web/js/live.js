// 战时 Live view of an activation: stats over the websocket, posts and holders, shortages, branches, a
// timeline, charts and a map; raise the level or switch back (战转平) with the typed confirmation.
import { $, state, t, el, api, get, table, zhEn, pct, fmtTime, guarded, drillBadge, hazardName, levelName, notify } from "./core.js";
import { LiveSocket } from "./ws.js";
import { StatusCharts } from "./charts.js";
import { drawMap } from "./map.js";
import { renderPosts, renderShortages, renderBranches, renderTimeline } from "./board.js";
import { confirmTyped } from "./confirm.js";

const KPIS = ["slots", "filled", "acknowledged", "en_route", "arrived", "declined", "escalated"];
let L = null; // the open activation's view state

export async function showList() {
  const list = await get("/activations");
  const rows = list.map((a) => el("tr", { class: a.status === "active" ? "" : "ended", "data-activation": a.id },
    el("td", {}, el("button", { type: "button", class: "linkish", onclick: () => { location.hash = `#/live/${a.id}`; } }, `#${a.id}`)),
    el("td", {}, drillBadge(a.drill)), el("td", {}, a.summary?.scope?.name || a.scope), el("td", {}, hazardName(a.hazard)),
    el("td", {}, levelName(a.level)), el("td", {}, t(`act.${a.status}`)),
    el("td", { class: "num" }, a.summary ? `${a.summary.filled}/${a.summary.slots}` : ""), el("td", {}, fmtTime(a.started_at, true))));
  $("#activation-list").replaceChildren(list.length ? table(["id", "kind", "scope", "plan", "level", "status", "#filledSlots", "startedAt"], rows)
    : el("p", { class: "muted" }, t("noActivations")));
}

export function closeLive() {
  if (!L) return;
  L.socket?.close(); L.charts?.dispose(); clearTimeout(L.refreshTimer); clearInterval(L.clock);
  L = null;
}

async function scopeCommunities(a) {
  const scope = a.summary?.scope || { code: a.scope, level: "community" };
  if (scope.level === "community") return [await get(`/units/${encodeURIComponent(scope.code)}`)];
  if (scope.level === "street") return (await get(`/units?parent=${encodeURIComponent(scope.code)}&level=community&page_size=500`)).items;
  // A district or city: every community the operator sees, kept to those the activation counts (stats).
  const out = [];
  for (let page = 1; page < 20; page++) {
    const data = await get(`/units?level=community&page_size=500&page=${page}`);
    out.push(...data.items);
    if (out.length >= data.total || !data.items.length) break;
  }
  return out;
}

/** Open activation ``id``; ``current()`` says whether this screen is still the one wanted (see app.js route). */
export async function openLive(id, current = () => true) {
  closeLive();
  const a = await get(`/activations/${id}`);
  if (!current()) return;
  L = { id, activation: a, stats: { total: {}, communities: {} }, events: new Map(), community: "",
    posts: new Map(), orders: new Map(), refreshTimer: null, loading: false, again: false };
  const view0 = L;
  L.communities = await scopeCommunities(a);
  if (!current() || L !== view0) return;
  L.names = Object.fromEntries(L.communities.map((c) => [c.code, c.name]));
  if (L.communities.length === 1) L.community = L.communities[0].code;
  $("#live-empty").hidden = true; $("#live-panel").hidden = false;
  L.charts = new StatusCharts($("#chart-time"), $("#chart-communities"));
  renderHeader();
  await refresh();
  if (!current() || L !== view0) return;
  L.clock = setInterval(() => { if (L && L.stats.total.slots !== undefined) renderCharts(); }, 15000); // the time axis moves on
  const view = L;
  L.socket = new LiveSocket({
    token: () => state.token, channel: `activation:${id}`,
    handlers: {
      snapshot: (m) => { if (L !== view) return; applyStats(m.data.stats); L.activation = { ...L.activation, ...m.data.activation }; renderHeader(); scheduleRefresh(0); },
      event: (m, { history }) => { if (L !== view) return; onEvent(m, history); },
      stats: (m) => { if (L === view) applyStats(m); },
      state: (s, info) => { if (L === view) connState(s, info); },
    },
  });
}

function connState(s, info) {
  const box = $("#live-conn");
  box.className = `conn ${s}`;
  box.textContent = s === "live" ? t("connLive") : s === "reconnecting" ? t("connRetry", { n: Math.round((info.delay || 0) / 1000) || "" }) : s === "closed" ? "" : t("connConnecting");
  if (s === "reconnecting" && info.code === 1008 && !info.resync) get("/auth/me").catch(() => {}); // expired log-in → back to the form
}

function onEvent(m, history) {
  L.events.set(m.seq, m);
  if (L.events.size > 600) L.events.delete(Math.min(...L.events.keys()));
  renderTimelineNow();
  if (history) return;
  if (m.event.startsWith("activation.")) {
    get(`/activations/${L.id}`).then((a) => { if (L && L.id === a.id) { L.activation = a; renderHeader(); } }).catch(() => {});
  }
  scheduleRefresh(m.event.startsWith("order") ? 150 : 300);  // order.* and orders.notified
}

function renderTimelineNow() {
  renderTimeline($("#timeline"), L.events, { orders: L.orders, posts: L.posts, communityNames: L.names });
}

function applyStats(m) {
  if (!m || !m.total) return;
  L.stats = { total: m.total, communities: m.communities || {} };
  const counted = Object.keys(L.stats.communities);
  if (counted.length && L.communities.length > counted.length) { // a district or city: keep the scope's communities
    L.communities = L.communities.filter((c) => L.stats.communities[c.code]);
    renderHeader();
  }
  L.charts.add(m.at, m.total);
  renderStats();
}

function renderStats() {
  const s = L.stats.total;
  const tile = (key, value, cls, extra) => el("div", { class: `stat ${cls || ""}`, "data-kpi": key }, el("b", {}, String(value ?? 0)), el("span", {}, t(`k.${key}`)), extra || "");
  const unfilled = Math.max(0, (s.slots || 0) - (s.filled || 0));
  $("#kpis").replaceChildren(
    tile("fill_rate", pct(s.fill_rate), s.fill_rate >= 0.999 ? "ok" : "warn"),
    ...KPIS.map((k) => tile(k, s[k], k === "declined" || k === "escalated" ? (s[k] ? "warn" : "") : k === "arrived" ? "ok" : "")),
    tile("unfilled", unfilled, unfilled ? "warn" : "ok"));
  const rows = Object.entries(L.stats.communities).map(([code, c]) => el("tr", { "data-community": code, class: code === L.community ? "selected" : "" },
    el("td", {}, el("button", { type: "button", class: "linkish", onclick: () => pickCommunity(code) }, L.names[code] || code)),
    el("td", { class: c.fill_rate >= 0.999 ? "num ok" : "num warn" }, pct(c.fill_rate)),
    ...KPIS.map((k) => el("td", { class: "num" }, c[k]))));
  $("#community-stats").replaceChildren(table(["community", "#k.fill_rate", ...KPIS.map((k) => `#k.${k}`)], rows));
  renderCharts();
  renderMap();
}

const when = (iso) => (iso ? new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z").getTime() : null);
function renderCharts() {
  L.charts.render(L.stats.communities, L.names, when(L.activation.started_at), when(L.activation.ended_at));
}

function renderMap() {
  drawMap($("#map"), { communities: L.communities,
    stats: L.stats.communities, posts: [...L.posts.values()].map((p) => ({ ...p, name: zhEn(p.name_zh, p.name_en) })),
    selected: L.community, onPick: pickCommunity });
}

function pickCommunity(code) {
  L.community = L.community === code && L.communities.length > 1 ? "" : code;
  $("#board-community").value = L.community;
  renderStats(); scheduleRefresh(0);
}

function renderHeader() {
  const a = L.activation, s = a.summary || {};
  const ended = a.status !== "active";
  document.body.classList.toggle("drill-mode", !!a.drill);
  $("#live-title").replaceChildren(drillBadge(a.drill), " ", `${s.scope ? s.scope.name : a.scope} · ${hazardName(a.hazard)} · ${levelName(a.level)}`,
    " ", el("span", { class: `badge ${ended ? "ended" : "active"}` }, t(`act.${a.status}`)));
  $("#live-meta").textContent = t("liveMeta", { id: a.id, at: fmtTime(a.started_at, true), by: a.started_by_name || a.started_by, posts: s.posts ?? "—",
    branches: s.branches ?? "—", borrowed: s.borrowed ?? 0, ms: s.solve_ms ?? "—" }) + (a.ended_at ? ` · ${t("endedAt")} ${fmtTime(a.ended_at, true)}` : "");
  $("#drill-banner").hidden = !a.drill;
  $("#compare-button").hidden = !a.drill;
  const sel = $("#level-select");
  sel.replaceChildren(...["I", "II", "III", "IV"].map((l) => el("option", { value: l, disabled: l === a.level }, t(`level.${l}`))));
  sel.value = a.level === "I" ? "II" : ({ II: "I", III: "II", IV: "III" })[a.level];
  for (const b of ["#level-button", "#end-button", "#level-select"]) $(b).disabled = ended;
  const board = $("#board-community");
  const keep = L.community;
  board.replaceChildren(...(L.communities.length > 1 ? [el("option", { value: "" }, t("allCommunities"))] : []),
    ...L.communities.map((c) => el("option", { value: c.code }, c.name)));
  board.value = keep;
}

function scheduleRefresh(delay) {
  clearTimeout(L.refreshTimer);
  L.refreshTimer = setTimeout(() => guarded(refresh)(), delay);
}

// One click: the best available people of the post's street are sent to its open places (街道统筹借调).
async function fillFromStreet(view, post, button) {
  button.disabled = true;
  button.textContent = t("sending");
  try {
    const { body } = await api(`/activations/${view.id}/posts/${post.id}/fill`, { method: "POST" });
    button.textContent = body.still_short ? t("borrowPartly", { sent: body.sent, short: body.still_short }) : t("borrowDone", { sent: body.sent });
  } catch (e) {
    button.textContent = e.message || t("failed");
    button.disabled = false;
  }
  scheduleRefresh(300);
}

async function refresh() {
  const view = L;
  if (!view) return;
  if (view.loading) { view.again = true; return; }
  view.loading = true;
  try {
    const q = view.community ? `&community=${encodeURIComponent(view.community)}` : "";
    const base = `/activations/${view.id}`;
    const [posts, orders, shortPosts, branches] = await Promise.all([
      get(`${base}/posts?page_size=1000${q}`), get(`${base}/orders?page_size=1000${q}`),
      get(`${base}/posts?short=true&page_size=200${q}`), get(`${base}/branches`)]);
    if (L !== view) return;
    view.posts = new Map(posts.items.map((p) => [p.id, p]));
    for (const o of orders.items) view.orders.set(o.id, o);
    renderPosts($("#posts"), { posts: posts.items, total: posts.total, orders: orders.items, communityNames: view.names, activationId: view.id });
    renderShortages($("#shortages"), { shortPosts: shortPosts.items, total: shortPosts.total, summary: view.activation.summary || {}, communityNames: view.names, onFill: (post, button) => fillFromStreet(view, post, button) });
    renderBranches($("#branches"), branches.filter((b) => !view.community || b.community === view.community), view.names);
    $("#shortage-count").textContent = shortPosts.total ? `（${shortPosts.total}）` : "";
    renderTimelineNow();
    renderMap();
  } finally {
    view.loading = false;
    if (view.again) { view.again = false; scheduleRefresh(0); }
  }
}

function changeLevel() {
  const a = L.activation, level = $("#level-select").value, name = a.summary?.scope?.name || a.scope;
  const id = L.id;
  confirmTyped({
    title: t("confirmLevelTitle"), name, confirmLabel: t("confirmLevel", { level: levelName(level) }),
    lines: [`${name} · ${hazardName(a.hazard)}`, `${levelName(a.level)} → ${levelName(level)}`, t("levelLine"), a.drill ? t("drillLine") : t("realLine")],
    action: async (key) => {
      const { body } = await api(`/activations/${id}/level`, { method: "POST", json: { level }, headers: { "Idempotency-Key": key } });
      notify(t("levelChanged", { level: levelName(body.level) }), "ok");
      if (L && L.id === id) { L.activation = body; renderHeader(); scheduleRefresh(0); }
    },
  });
}

function endActivation() {
  const a = L.activation, name = a.summary?.scope?.name || a.scope;
  const id = L.id;
  confirmTyped({
    title: t("confirmEndTitle"), name, confirmLabel: t("confirmEnd"),
    lines: [`${name} · ${hazardName(a.hazard)} · ${levelName(a.level)}`, t("endLine"), a.drill ? t("drillLine") : t("realLine")],
    action: async (key) => {
      const { body } = await api(`/activations/${id}/end`, { method: "POST", headers: { "Idempotency-Key": key } });
      notify(t("ended"), "ok");
      if (L && L.id === id) { L.activation = body; renderHeader(); scheduleRefresh(0); }
    },
  });
}

export function wireLive() {
  $("#level-button").addEventListener("click", changeLevel);
  $("#end-button").addEventListener("click", endActivation);
  $("#compare-button").addEventListener("click", () => { if (L?.activation) location.hash = `#/drills/${L.activation.id}`; });
  $("#board-community").addEventListener("change", (e) => { L.community = e.target.value; renderStats(); scheduleRefresh(0); });
  $("#post-close").addEventListener("click", () => $("#post-dialog").close());
  window.addEventListener("online", () => L?.socket?.nudge());
}

export function relabelLive() {
  if (!L) return;
  renderHeader(); renderStats(); scheduleRefresh(0);
}
