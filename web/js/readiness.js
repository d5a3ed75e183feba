// 平时 Readiness: the org tree (also the scope of the one key), readiness, plan coverage, teams, people.
import { $, $$, state, t, el, get, table, label, vocab, zhEn, pct, guarded } from "./core.js";

const pageSize = 50;
let page = 1;
let unitListeners = [];
export const onUnitChange = (fn) => unitListeners.push(fn);

export async function buildTree() {
  const me = state.me;
  const roots = await get("/units?page_size=500" + (me.scope_code ? "" : "&level=city"));
  const top = me.scope_code ? roots.items.filter((u) => u.code === me.scope_code) : roots.items;
  let list = top;
  if (me.scope_code && !top.length) list = [await get(`/units/${encodeURIComponent(me.scope_code)}`)];
  $("#tree").replaceChildren(...list.map(treeNode));
  if (list[0]) await selectUnit(list[0]);
}

function treeNode(unit) {
  const li = el("li", {});
  li.append(el("button", { type: "button", class: "node", "data-code": unit.code, "aria-pressed": "false",
    onclick: guarded(() => selectUnit(unit, li)) }, `${unit.name} `, el("small", {}, unit.code)));
  return li;
}

export async function selectUnit(unit, li) {
  state.unit = unit; page = 1;
  $$(".node.active").forEach((n) => { n.classList.remove("active"); n.setAttribute("aria-pressed", "false"); });
  const node = $(`.node[data-code="${unit.code}"]`);
  if (node) { node.classList.add("active"); node.setAttribute("aria-pressed", "true"); }
  li = li || node?.parentElement;
  if (li && !li.querySelector("ul") && ["city", "district", "street"].includes(unit.level)) {
    const children = await get(`/units?parent=${encodeURIComponent(unit.code)}&page_size=500`);
    li.append(el("ul", {}, children.items.map(treeNode)));
  }
  unitListeners.forEach((fn) => fn(unit));
  await renderReadiness();
}

export async function renderReadiness() {
  const unit = state.unit;
  if (!unit) return;
  await Promise.all([showReadiness(unit), showCoverage(), showTeams(unit), showPeople()]);
}

async function showReadiness(unit) {
  $("#unit-title").textContent = `${unit.name}（${unit.code}）`;
  const r = await get(`/units/${encodeURIComponent(unit.code)}/readiness`);
  const stat = (key, value, cls) => el("div", { class: `stat ${cls || ""}` }, el("b", {}, String(value)), el("span", {}, t(key)));
  $("#readiness").replaceChildren(
    stat("communities", r.communities), stat("total", r.people), stat("available", r.available, "ok"),
    stat("unavailable", r.unavailable, "warn"), stat("deployed", r.deployed), stat("partyMembers", r.party_members),
    stat("squads", r.teams.commando_squad || 0), stat("volunteerTeams", r.teams.volunteer_team || 0),
    stat("noLeader", r.groups_without_leader, r.groups_without_leader ? "warn" : "ok"));
  const rows = r.wartime_groups.map((g) => el("tr", {},
    el("td", {}, zhEn(g.name_zh, g.name_en)), el("td", { class: "num" }, g.people),
    el("td", { class: "num" }, g.available), el("td", { class: "num" }, g.party_members),
    el("td", { class: g.leaders ? "num" : "num warn" }, g.leaders)));
  const groups = table(["group", "#members", "#available", "#partyMembers", "#leaders"], rows);
  $("#groups").replaceChildren(...groups.childNodes);
  $("#skills").replaceChildren(...Object.entries(r.skills_available).map(([code, n]) =>
    el("span", { class: "chip" }, `${vocab("skills", code)} ${n}`)));
}

export function fillPlanSelects() {
  const hazard = $("#coverage-form [name=hazard]");
  const keep = hazard.value;
  hazard.replaceChildren(...state.plans.map((p) => el("option", { value: p.hazard }, zhEn(p.zh, p.en))));
  if (keep) hazard.value = keep; else if (state.plans.some((p) => p.hazard === "flood")) hazard.value = "flood";
  const level = $("#coverage-form [name=level]");
  const keepLevel = level.value || "III";
  level.replaceChildren(...["I", "II", "III", "IV"].map((l) => el("option", { value: l }, t(`level.${l}`))));
  level.value = keepLevel;
}

async function showCoverage() {
  const form = new FormData($("#coverage-form"));
  if (!form.get("hazard") || !state.unit) return;
  const params = new URLSearchParams({ hazard: form.get("hazard"), level: form.get("level") });
  const c = await get(`/units/${encodeURIComponent(state.unit.code)}/coverage?${params}`);
  const bar = (x) => el("span", { class: "meter", role: "img", "aria-label": pct(x) }, el("i", { style: `width:${Math.min(100, x * 100)}%` }));
  $("#coverage-summary").replaceChildren(
    el("div", { class: `stat ${c.coverage >= 0.8 ? "ok" : "warn"}` }, el("b", {}, pct(c.coverage)), el("span", {}, t("coverageRate"))),
    el("div", { class: "stat" }, el("b", {}, c.slots), el("span", {}, t("slots"))),
    el("div", { class: "stat" }, el("b", {}, c.pinned), el("span", {}, t("pinned"))),
    el("div", { class: "stat" }, el("b", {}, c.covered), el("span", {}, t("coveredNow"))));
  const rows = Object.entries(c.by_group).map(([code, g]) => {
    const rate = g.slots ? g.covered / g.slots : 1;
    return el("tr", {}, el("td", {}, vocab("wartime_groups", code)), el("td", { class: "num" }, g.slots),
      el("td", { class: "num" }, g.pinned), el("td", { class: "num" }, g.covered),
      el("td", { class: rate < 0.8 ? "warn" : "ok" }, bar(rate), " ", pct(rate)));
  });
  $("#coverage-table").replaceChildren(table(["group", "#slots", "#pinned", "#coveredNow", "coverageRate"], rows));
  $("#coverage-note").textContent = c.pinned ? "" : t("noPins");
}

async function showTeams(unit) {
  const data = await get(`/teams?unit=${encodeURIComponent(unit.code)}&page_size=100`);
  const rows = data.items.map((tm) => el("tr", {},
    el("td", {}, tm.name), el("td", {}, vocab("team_kinds", tm.kind)), el("td", {}, tm.community_code),
    el("td", {}, tm.leader_id ? el("button", { type: "button", class: "linkish", onclick: guarded(() => openPerson(tm.leader_id)) }, tm.leader_name || "—") : "—"),
    el("td", { class: "num" }, tm.member_count)));
  $("#teams").replaceChildren(table(["teamName", "kind", "community", "leader", "#members"], rows));
  $("#teams-total").textContent = t("teamsTotal", { n: data.total });
}

export async function showPeople() {
  if (!state.unit) return;
  const form = new FormData($("#filters"));
  const params = new URLSearchParams({ unit: state.unit.code, page, page_size: pageSize });
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  const data = await get(`/people?${params}`);
  const rows = data.items.map((p) => el("tr", {},
    el("td", {}, el("button", { type: "button", class: "linkish", "data-person": p.id, onclick: guarded(() => openPerson(p.id)) }, p.name)),
    el("td", { class: "mono" }, p.phone), el("td", {}, vocab("member_kinds", p.kind)),
    el("td", {}, p.community_code), el("td", {}, vocab("wartime_groups", p.wartime_group)),
    el("td", {}, p.skills.map((s) => vocab("skills", s)).join(zhEn("、", ", "))),
    el("td", {}, p.party_member ? t("yes") : t("no")),
    el("td", { class: p.available_now ? "ok" : "warn" }, vocab("statuses", p.status))));
  const tbl = table(["name", "phone", "kind", "community", "wartimeGroups", "skills", "partyMembers", "status"], rows);
  $("#people").replaceChildren(...tbl.childNodes);
  const pages = Math.max(1, Math.ceil(data.total / pageSize));
  $("#page-info").textContent = t("page", { page, pages, total: data.total });
  $("#prev").disabled = page <= 1; $("#next").disabled = page >= pages;
}

export async function openPerson(id) {
  const p = await get(`/people/${id}`);
  const row = (key, value) => [el("dt", {}, t(key)), el("dd", {}, value ?? "—")];
  $("#person-title").textContent = p.name;
  $("#person-body").replaceChildren(el("dl", { class: "facts" },
    row("phone", el("span", { class: "mono" }, p.phone)), row("kind", vocab("member_kinds", p.kind)),
    row("community", p.community_code), row("grid", p.grid_code), row("address", p.address),
    row("workUnit", p.work_unit), row("partyMembers", p.party_member ? t("yes") : t("no")),
    row("peacetimeGroup", vocab("peacetime_groups", p.peacetime_group)),
    row("wartimeGroups", vocab("wartime_groups", p.wartime_group) + (p.group_leader ? ` · ${t("groupLeader")}` : "")),
    row("skills", p.skills.map((s) => vocab("skills", s)).join(zhEn("、", ", ")) || "—"),
    row("availability", vocab("availability", p.availability)),
    row("status", `${vocab("statuses", p.status)}${p.leave_until ? ` (${t("leaveUntil")} ${p.leave_until})` : ""}`),
    row("availableNow", p.available_now ? t("yes") : t("no")), row("team", p.team_code),
    row("location", p.lat != null ? `${p.lat.toFixed(5)}, ${p.lon.toFixed(5)}` : null)));
  $("#person-dialog").showModal();
  $("#person-close").focus();
}

export function wireReadiness() {
  $("#filters").addEventListener("submit", (e) => { e.preventDefault(); page = 1; guarded(showPeople)(); });
  $("#prev").addEventListener("click", () => { page -= 1; guarded(showPeople)(); });
  $("#next").addEventListener("click", () => { page += 1; guarded(showPeople)(); });
  $("#coverage-form").addEventListener("change", guarded(showCoverage));
  $("#person-close").addEventListener("click", () => $("#person-dialog").close());
}

export function fillFilterSelects() {
  const fill = (select, items) => {
    const first = select.options[0];
    select.replaceChildren(first, ...items.map((item) => el("option", { value: item.code }, label(items, item.code))));
  };
  fill($("#filters [name=kind]"), state.vocab.member_kinds);
  fill($("#filters [name=skill]"), state.vocab.skills);
}
