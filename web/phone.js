// The phone page of a personal link: show the order, act with big buttons. A GET never acts; every
// press carries an idempotency key that is kept until the server answers, so a retry after a dropped
// connection repeats the same request instead of acting twice.
(function () {
  "use strict";
  const T = {
    zh: { title: "应急派单", status: "状态", where: "地点", reportBy: "到岗时限", ackBy: "确认时限", group: "工作组",
      branch: "临时党支部书记", leader: "队长", acknowledge: "确认接单", en_route: "我已出发", arrive: "我已到岗",
      decline: "无法前往", why: "原因", ill: "生病", away: "外出", family: "照顾家人", other: "其他",
      noteHint: "补充说明（选填，其他原因必填）", confirmDecline: "确认无法前往", back: "返回", team: "我的队伍",
      teamAck: "全队确认", arrivedCount: "到岗人数", reportArrived: "上报到岗人数", shortageHint: "缺什么？如：缺2名医护",
      reportShortage: "上报缺口", pending: "正在提交…", done: "已提交", failed: "提交失败，请重试", offline: "网络中断，恢复后自动重试…",
      drill: "演练", noOrder: "您当前没有派单。", hello: "您好，" },
    en: { title: "Emergency dispatch", status: "Status", where: "Where", reportBy: "Arrive by", ackBy: "Confirm by",
      group: "Group", branch: "Branch secretary", leader: "Team leader", acknowledge: "Accept", en_route: "On my way",
      arrive: "I have arrived", decline: "I cannot go", why: "Reason", ill: "Ill", away: "Away", family: "Caring for family",
      other: "Other", noteHint: "Note (optional; required for Other)", confirmDecline: "Confirm: I cannot go", back: "Back",
      team: "My team", teamAck: "Accept for the whole team", arrivedCount: "People arrived", reportArrived: "Report arrivals",
      shortageHint: "What is short? e.g. 2 medics", reportShortage: "Report a shortage", pending: "Sending…", done: "Done",
      failed: "Failed; please try again", offline: "Offline; will retry when the network is back…", drill: "DRILL",
      noOrder: "You have no order right now.", hello: "Hello, " },
  };
  const GROUP = { command: ["综合指挥组", "Command"], screening: ["排查管控组", "Screening"], medical: ["医疗保障组", "Medical"],
    supplies: ["物资保障组", "Supplies"], patrol: ["安全巡查组", "Safety patrol"], information: ["宣传引导组", "Public information"],
    care: ["关爱服务组", "Care"] };
  const STATUS_EN = { notified: "Waiting for you", acknowledged: "Accepted", en_route: "On the way", arrived: "Arrived",
    escalated: "Overdue", released: "Released", declined: "Declined", reassigned: "Given to someone else", cancelled: "Cancelled" };
  const token = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
  let lang = localStorage.getItem("mobilize.lang") || "zh";
  let data = null;
  const $ = (s) => document.querySelector(s);
  const t = (k) => (T[lang] || T.zh)[k] || k;

  function banner(kind, text) { const b = $("#banner"); b.className = `banner ${kind}`; b.textContent = text || ""; }
  function when(iso) { if (!iso) return "—"; const d = new Date(iso); return d.toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour: "2-digit", minute: "2-digit", month: "numeric", day: "numeric" }); }

  function applyLanguage() {
    document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    $("#lang").textContent = lang === "zh" ? "English" : "中文";
    $("#drill").textContent = t("drill");
    if (data) render(data);
  }

  function render(d) {
    data = d;
    $("#error").hidden = true;
    $("#drill").hidden = !d.activation.drill;
    $("#title").textContent = `${t("title")} · ${lang === "zh" ? (d.activation.hazard_zh || "") + (d.activation.level_zh || "") : d.activation.hazard + " " + d.activation.level}`;
    const o = d.order;
    $("#order").hidden = false;
    $("#name").textContent = t("hello") + d.person.name;
    if (!o) { $("#post").textContent = t("noOrder"); document.querySelectorAll("[data-action]").forEach((b) => { b.hidden = true; }); return; }
    $("#status").textContent = lang === "zh" ? o.status_zh : (STATUS_EN[o.status] || o.status);
    $("#post").textContent = lang === "zh" ? o.post.name_zh : o.post.name_en;
    $("#where").textContent = `${o.post.community} · ${o.post.site} (${o.post.lat.toFixed(5)}, ${o.post.lon.toFixed(5)})`;
    $("#report-by").textContent = when(o.arrive_deadline_at);
    $("#ack-by").textContent = when(o.ack_deadline_at);
    const g = GROUP[o.post.group]; $("#group").textContent = g ? g[lang === "zh" ? 0 : 1] : o.post.group;
    $("#branch").textContent = d.branch && d.branch.secretary ? d.branch.secretary : "—";
    $("#leader").textContent = d.team ? `${d.team.leader || "—"}${d.team.leader_phone ? " " + d.team.leader_phone : ""}` : "—";
    document.querySelectorAll("[data-action]").forEach((b) => { b.hidden = !o.actions.includes(b.dataset.action); b.disabled = false; });
    const team = d.team && d.team.is_leader;
    $("#team").hidden = !team;
    if (team) {
      $("#members").replaceChildren(...d.team_members.map((m) => {
        const li = document.createElement("li");
        const a = document.createElement("span"); a.textContent = m.name;
        const b = document.createElement("b"); b.textContent = lang === "zh" ? m.status_zh : (STATUS_EN[m.status] || "—");
        li.append(a, b); return li;
      }));
    }
  }

  function showError(body, status) {
    const err = body && body.error;
    const box = $("#error");
    box.hidden = false;
    box.textContent = err ? (lang === "zh" ? err.message : err.message_en) : `HTTP ${status}`;
    if (status === 404 || status === 410) { $("#order").hidden = true; $("#team").hidden = true; }
  }

  async function load() {
    try {
      const r = await fetch(`/api/v1/m/${encodeURIComponent(token)}`, { cache: "no-store" });
      const body = await r.json();
      if (!r.ok) return showError(body, r.status);
      render(body);
      live(body.person.id);
    } catch (e) { banner("failed", t("offline")); setTimeout(load, 5000); }
  }

  // Live updates of one's own order over the websocket (person channel); polling stays as a fallback.
  let socket = null, retry = 0;
  function live(personId) {
    if (socket || !("WebSocket" in window)) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/ws?token=${encodeURIComponent(token)}`);
    socket.onopen = () => { retry = 0; socket.send(JSON.stringify({ type: "subscribe", channel: `person:${personId}`, since: null })); };
    socket.onmessage = (m) => {
      const msg = JSON.parse(m.data);
      if (msg.type === "ping") socket.send(JSON.stringify({ type: "pong" }));
      else if (msg.type === "event") load();
    };
    socket.onclose = (e) => {
      socket = null;
      if (e.code === 1008 && e.reason !== "resync") return;  // link no longer valid: the page says so on reload
      setTimeout(() => live(personId), Math.min(1000 * 2 ** retry++, 30000));
    };
  }

  // A press is remembered (with its key) until the server answers, also across a reload.
  async function send(path, payload) {
    const pendingKey = `mobilize.pending.${token}`;
    let pending = JSON.parse(sessionStorage.getItem(pendingKey) || "null");
    if (!pending || pending.path !== path || JSON.stringify(pending.payload) !== JSON.stringify(payload)) {
      const key = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random()).replace(/-/g, "");
      pending = { path, payload, key };
      sessionStorage.setItem(pendingKey, JSON.stringify(pending));
    }
    document.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    banner("pending", t("pending"));
    for (let attempt = 0; attempt < 30; attempt++) {
      try {
        const r = await fetch(`/api/v1/m/${encodeURIComponent(token)}/${path}`, {
          method: "POST", headers: { "Content-Type": "application/json", "Idempotency-Key": pending.key },
          body: JSON.stringify(payload) });
        const body = await r.json();
        sessionStorage.removeItem(pendingKey);
        document.querySelectorAll("button").forEach((b) => { b.disabled = false; });
        if (!r.ok) { banner("failed", t("failed")); showError(body, r.status); if (r.status !== 404 && r.status !== 410) load(); return; }
        banner("done", t("done"));
        // A team action answers with the whole page; a button with the order's new state only (post,
        // branch and team do not change with a press), merged into what is shown.
        if (body.person) render(body);
        else if (data && data.order && body.order && data.order.id === body.order.id) render({ ...data, order: { ...data.order, ...body.order } });
        else load();
        return;
      } catch (e) {
        banner("pending", t("offline"));
        await new Promise((res) => setTimeout(res, Math.min(1000 * 2 ** attempt, 15000)));
      }
    }
    banner("failed", t("failed"));
    document.querySelectorAll("button").forEach((b) => { b.disabled = false; });
  }

  document.querySelectorAll("[data-action]").forEach((b) => b.addEventListener("click", () => {
    if (b.dataset.action === "decline") { $("#decline-form").hidden = false; $(".actions").hidden = true; return; }
    send("actions", { action: b.dataset.action });
  }));
  $("#decline-cancel").addEventListener("click", () => { $("#decline-form").hidden = true; $(".actions").hidden = false; });
  $("#decline-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target);
    $("#decline-form").hidden = true; $(".actions").hidden = false;
    send("actions", { action: "decline", reason: f.get("reason"), note: f.get("note") || null });
  });
  $("#team-ack").addEventListener("click", () => send("team", { action: "acknowledge_all" }));
  $("#headcount-form").addEventListener("submit", (e) => { e.preventDefault(); send("team", { action: "arrival_headcount", count: Number(new FormData(e.target).get("count")) }); });
  $("#shortage-form").addEventListener("submit", (e) => { e.preventDefault(); send("team", { action: "shortage", note: new FormData(e.target).get("note") }); });
  $("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("mobilize.lang", lang); applyLanguage(); });
  applyLanguage();
  // A press still pending from before a reload or a dropped connection is sent again with its key.
  const leftover = JSON.parse(sessionStorage.getItem(`mobilize.pending.${token}`) || "null");
  if (leftover) send(leftover.path, leftover.payload); else load();
  setInterval(() => { if (!document.hidden) load(); }, 30000);
})();
