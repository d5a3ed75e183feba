// 一键启动 The one key: scope (the selected unit), plan, level, drill; preview the demand; press; confirm by
// typing the scope's name; POST /activations with an Idempotency-Key kept until the answer.
import { $, state, t, el, api, get, table, vocab, zhEn, guarded, drillBadge, hazardName, levelName, notify } from "./core.js";
import { confirmTyped } from "./confirm.js";

let openActivation = () => {};
let previewSeq = 0;

export function wireActivate(open) {
  openActivation = open;
  $("#activate-form").addEventListener("change", guarded(showPreview));
  $("#activate-form").addEventListener("submit", (e) => { e.preventDefault(); press(); });
}

export function renderPlanChoices() {
  const form = $("#activate-form");
  const current = new FormData(form);
  const hazard = current.get("hazard") || (state.plans.some((p) => p.hazard === "flood") ? "flood" : state.plans[0]?.hazard);
  const level = current.get("level") || "III";
  $("#plan-choices").replaceChildren(...state.plans.map((p) => el("label", { class: "choice" },
    el("input", { type: "radio", name: "hazard", value: p.hazard, checked: p.hazard === hazard }), " ", zhEn(p.zh, p.en))));
  const plan = state.plans.find((p) => p.hazard === hazard);
  $("#level-choices").replaceChildren(...(plan ? plan.levels : []).map((l) => el("label", { class: `choice level-${l.level}` },
    el("input", { type: "radio", name: "level", value: l.level, checked: l.level === level }), " ",
    el("span", { class: "nowrap" }, zhEn(l.zh, `Level ${l.level}`)), el("small", {}, t("levelHint", { posts: l.posts, ack: l.acknowledge_minutes, arrive: l.arrive_minutes })))));
}

export function scopeChanged() {
  const u = state.unit;
  $("#activate-scope").replaceChildren(el("b", {}, u ? u.name : "—"), " ", el("small", {}, u ? `${u.code} · ${vocab("levels", u.level)}` : ""));
  $("#activate-result").replaceChildren();
  if (!$("#activate-view").hidden) guarded(showPreview)();
}

function choice() {
  const f = new FormData($("#activate-form"));
  return { scope: state.unit?.code, hazard: f.get("hazard"), level: f.get("level"), drill: f.get("drill") === "on" };
}

export async function showPreview(event) {
  if (event && event.target && event.target.name === "hazard") renderPlanChoices();
  const c = choice();
  $("#activate-drill-flag").replaceChildren(drillBadge(c.drill));
  if (!c.scope || !c.hazard || !c.level) return;
  const seq = ++previewSeq;
  const q = new URLSearchParams({ scope: c.scope, level: c.level });
  const [p, r] = await Promise.all([get(`/plans/${encodeURIComponent(c.hazard)}/preview?${q}`),
    get(`/units/${encodeURIComponent(c.scope)}/readiness`)]);
  if (seq !== previewSeq) return; // a newer choice is on its way
  const stat = (key, value, cls) => el("div", { class: `stat ${cls || ""}` }, el("b", {}, String(value)), el("span", {}, t(key)));
  const skillRows = Object.entries(p.slots_needing_skill).map(([skill, need]) => {
    const have = r.skills_available[skill] || 0;
    const short = Math.max(0, need - have);
    return el("tr", { class: short ? "short" : "" }, el("td", {}, vocab("skills", skill)), el("td", { class: "num" }, need),
      el("td", { class: "num" }, have), el("td", { class: short ? "num warn" : "num ok" }, short ? `−${short}` : "✓"));
  });
  const shortSkills = skillRows.filter((row) => row.classList.contains("short")).length;
  $("#preview").replaceChildren(
    el("div", { class: "stats" }, stat("communities", p.communities), stat("posts", p.posts), stat("slots", p.slots),
      stat("availablePeople", r.available, r.available >= p.slots ? "ok" : "warn"),
      stat("expectedShortSkills", shortSkills, shortSkills ? "warn" : "ok")),
    el("div", { class: "two" },
      el("div", {}, el("h3", {}, t("slotsByGroup")), table(["group", "#slots"],
        Object.entries(p.slots_by_group).map(([g, n]) => el("tr", {}, el("td", {}, vocab("wartime_groups", g)), el("td", { class: "num" }, n))))),
      el("div", {}, el("h3", {}, t("slotsBySkill")), table(["skill", "#needed", "#availableNow", "#expectedShortage"], skillRows))),
    r.available < p.slots ? el("p", { class: "warn-text" }, t("fewerPeopleThanSlots", { people: r.available, slots: p.slots })) : "");
}

function press() {
  const c = choice();
  if (!c.scope || !c.hazard || !c.level) { notify(t("chooseFirst"), "error"); return; }
  const unit = state.unit;
  confirmTyped({
    title: c.drill ? t("confirmDrillTitle") : t("confirmActivateTitle"),
    lines: [
      `${t("scope")}：${unit.name}（${unit.code}）`,
      `${t("plan")}：${hazardName(c.hazard)} · ${levelName(c.level)}`,
      c.drill ? t("drillLine") : t("realLine"),
    ],
    name: unit.name,
    confirmLabel: c.drill ? t("confirmDrill") : t("confirmActivate"),
    action: async (key) => {
      const { status, body } = await api("/activations", { method: "POST", json: c, headers: { "Idempotency-Key": key } });
      notify(status === 201 ? t("activated", { id: body.id }) : t("activatedRetry", { id: body.id }), "ok");
      openActivation(body.id);
    },
    onError: (e, box) => {
      const id = e.error && e.error.activation_id;
      if (e.status !== 409 || !id) return false;
      running(id, box);
      return true;
    },
  });
}

// A 409: the scope overlaps a running activation. Show it (in the dialog and under the key) and offer to open it.
async function running(id, box) {
  let about = ` #${id} `;
  let drill = null;
  try {
    const a = await get(`/activations/${id}`);
    const s = a.summary || {};
    drill = a.drill;
    about = ` ${s.scope ? s.scope.name : a.scope} · ${hazardName(a.hazard)} · ${levelName(a.level)} (#${a.id}) `;
  } catch (e) { /* the id is enough to open it */ }
  const content = (buttonId) => [el("span", {}, t("overlap")), " ", drill === null ? "" : drillBadge(drill), about,
    el("button", { type: "button", class: "primary small", id: buttonId,
      onclick: () => { if ($("#confirm-dialog").open) $("#confirm-dialog").close(); openActivation(id); } }, t("openRunning"))];
  box.replaceChildren(...content("open-running"));
  $("#activate-result").replaceChildren(el("p", { class: "error" }, ...content(null)));
}
