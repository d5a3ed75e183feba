// Readiness dashboard: log in, walk the org tree, see readiness and people of a unit.
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);
  const state = {
    lang: localStorage.getItem("mobilize.lang") || "zh",
    token: sessionStorage.getItem("mobilize.token"),
    vocab: null, unit: null, page: 1, pageSize: 50,
  };
  const t = (key, vars) => {
    let text = (window.I18N[state.lang] || window.I18N.zh)[key] || key;
    for (const [k, v] of Object.entries(vars || {})) text = text.replace(`{${k}}`, v);
    return text;
  };
  const label = (list, code) => {
    const item = (list || []).find((x) => x.code === code);
    if (!item) return code;
    return state.lang === "zh" ? item.zh : (item.en || item.code);
  };
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
    return node;
  };

  function applyLanguage() {
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    document.querySelectorAll("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
    document.querySelectorAll("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
    $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
    document.title = t("title") + " · mobilize";
  }

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (state.token) headers.Authorization = `Bearer ${state.token}`;
    const response = await fetch(`/api/v1${path}`, Object.assign({}, options, { headers }));
    if (response.status === 401 && !path.startsWith("/auth/token")) { logout(); throw new Error(t("loginFailed")); }
    const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
    if (!response.ok) {
      const err = body && body.error;
      const msg = err ? (state.lang === "zh" ? err.message : err.message_en) : response.statusText;
      throw new Error(msg);
    }
    return body;
  }

  async function login(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    $("#login-error").textContent = "";
    try {
      const body = await api("/auth/token", { method: "POST", body: new URLSearchParams(form) });
      state.token = body.access_token;
      sessionStorage.setItem("mobilize.token", state.token);
      await start();
    } catch (e) {
      $("#login-error").textContent = e.message || t("loginFailed");
    }
  }

  function logout() {
    state.token = null;
    sessionStorage.removeItem("mobilize.token");
    $("#app-view").hidden = true; $("#login-view").hidden = false; $("#logout").hidden = true; $("#who").textContent = "";
  }

  async function start() {
    const me = await api("/auth/me");
    state.vocab = await api("/vocabulary");
    $("#who").textContent = `${me.display_name} · ${state.lang === "zh" ? me.role_zh : me.role}${me.scope_name ? " · " + me.scope_name : ""}`;
    $("#login-view").hidden = true; $("#app-view").hidden = false; $("#logout").hidden = false;
    fillSelect($("#filters [name=kind]"), state.vocab.member_kinds);
    fillSelect($("#filters [name=skill]"), state.vocab.skills);
    const roots = await api("/units?page_size=500" + (me.scope_code ? "" : "&level=city"));
    const top = me.scope_code ? roots.items.filter((u) => u.code === me.scope_code) : roots.items;
    const tree = $("#tree"); tree.replaceChildren();
    for (const unit of top) tree.append(treeNode(unit));
    if (top[0]) selectUnit(top[0]);
  }

  function fillSelect(select, items) {
    const first = select.options[0];
    select.replaceChildren(first);
    for (const item of items) select.append(el("option", { value: item.code }, label(items, item.code)));
  }

  function treeNode(unit) {
    const li = el("li", {});
    const toggle = el("button", { type: "button", class: "node", "data-code": unit.code, onclick: () => selectUnit(unit, li) },
      `${unit.name} `, el("small", {}, unit.code));
    li.append(toggle);
    return li;
  }

  async function selectUnit(unit, li) {
    state.unit = unit; state.page = 1;
    document.querySelectorAll(".node.active").forEach((n) => n.classList.remove("active"));
    const node = document.querySelector(`.node[data-code="${unit.code}"]`);
    if (node) node.classList.add("active");
    li = li || node?.parentElement;
    if (li && !li.querySelector("ul") && ["city", "district", "street"].includes(unit.level)) {
      const children = await api(`/units?parent=${encodeURIComponent(unit.code)}&page_size=500`);
      const ul = el("ul", {});
      for (const child of children.items) ul.append(treeNode(child));
      li.append(ul);
    }
    await Promise.all([showReadiness(unit), showPeople()]);
  }

  async function showReadiness(unit) {
    $("#unit-title").textContent = `${unit.name}（${unit.code}）`;
    const r = await api(`/units/${encodeURIComponent(unit.code)}/readiness`);
    const stat = (key, value, cls) => el("div", { class: `stat ${cls || ""}` }, el("b", {}, String(value)), el("span", {}, t(key)));
    $("#readiness").replaceChildren(
      stat("communities", r.communities), stat("total", r.people), stat("available", r.available, "ok"),
      stat("unavailable", r.unavailable, "warn"), stat("deployed", r.deployed), stat("partyMembers", r.party_members),
      stat("squads", r.teams.commando_squad || 0), stat("volunteerTeams", r.teams.volunteer_team || 0),
      stat("noLeader", r.groups_without_leader, r.groups_without_leader ? "warn" : "ok"));
    const head = el("tr", {}, ...["group", "members", "available", "partyMembers", "leaders"].map((k) => el("th", {}, t(k))));
    const rows = r.wartime_groups.map((g) => el("tr", {},
      el("td", {}, state.lang === "zh" ? g.name_zh : g.name_en), el("td", {}, String(g.people)),
      el("td", {}, String(g.available)), el("td", {}, String(g.party_members)), el("td", {}, String(g.leaders))));
    $("#groups").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    $("#skills").replaceChildren(...Object.entries(r.skills_available).map(([code, n]) =>
      el("span", { class: "chip" }, `${label(state.vocab.skills, code)} ${n}`)));
  }

  async function showPeople() {
    const form = new FormData($("#filters"));
    const params = new URLSearchParams({ unit: state.unit.code, page: state.page, page_size: state.pageSize });
    for (const [k, v] of form.entries()) if (v) params.set(k, v);
    const data = await api(`/people?${params}`);
    const head = el("tr", {}, ...["name", "phone", "kind", "community", "wartimeGroups", "skills", "partyMembers", "status"]
      .map((k) => el("th", {}, t(k))));
    const rows = data.items.map((p) => el("tr", {},
      el("td", {}, p.name), el("td", { class: "mono" }, p.phone), el("td", {}, label(state.vocab.member_kinds, p.kind)),
      el("td", {}, p.community_code), el("td", {}, label(state.vocab.wartime_groups, p.wartime_group)),
      el("td", {}, p.skills.map((s) => label(state.vocab.skills, s)).join("、")),
      el("td", {}, p.party_member ? t("yes") : t("no")),
      el("td", { class: p.available_now ? "ok" : "warn" }, label(state.vocab.statuses, p.status))));
    $("#people").replaceChildren(el("thead", {}, head), el("tbody", {}, ...rows));
    const pages = Math.max(1, Math.ceil(data.total / state.pageSize));
    $("#page-info").textContent = t("page", { page: state.page, pages, total: data.total });
    $("#prev").disabled = state.page <= 1; $("#next").disabled = state.page >= pages;
  }

  $("#login-form").addEventListener("submit", login);
  $("#logout").addEventListener("click", logout);
  $("#lang").addEventListener("click", () => {
    state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("mobilize.lang", state.lang);
    applyLanguage(); if (state.token && state.unit) selectUnit(state.unit);
  });
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); state.page = 1; showPeople(); });
  $("#prev").addEventListener("click", () => { state.page -= 1; showPeople(); });
  $("#next").addEventListener("click", () => { state.page += 1; showPeople(); });
  applyLanguage();
  if (state.token) start().catch(logout);
})();
