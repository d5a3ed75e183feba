// The command center: log in, then three screens chosen by the tabs (and the address's #hash):
//   #/readiness  平时 readiness of the selected unit (js/readiness.js)
//   #/activate   一键启动 the one key over the selected unit (js/activate.js)
//   #/live[/id]  战时 the live view of an activation (js/live.js)
//   #/drills[/activation id]  演练推演 drill jobs and reports; with an id, measured vs predicted (js/drills.js)
// Every read is scoped by the API to the operator's role and subtree; the page shows what it gets.
import { $, $$, state, t, api, get, setUnauthorizedHandler, guarded } from "./js/core.js";
import { buildTree, renderReadiness, wireReadiness, fillFilterSelects, fillPlanSelects, onUnitChange } from "./js/readiness.js";
import { wireActivate, renderPlanChoices, scopeChanged, showPreview } from "./js/activate.js";
import { wireLive, showList, openLive, closeLive, relabelLive } from "./js/live.js";
import { wireDrills, showDrills, hideDrills, relabelDrills } from "./js/drills.js";

const SCREENS = ["readiness", "activate", "live", "drills"];

function applyLanguage() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  $$("[data-i18n]").forEach((n) => { n.textContent = t(n.dataset.i18n); });
  $$("[data-i18n-placeholder]").forEach((n) => { n.placeholder = t(n.dataset.i18nPlaceholder); });
  $$("[data-i18n-label]").forEach((n) => { n.setAttribute("aria-label", t(n.dataset.i18nLabel)); });
  $("#lang").textContent = state.lang === "zh" ? "English" : "中文";
  $("#lang").setAttribute("lang", state.lang === "zh" ? "en" : "zh-CN");
  document.title = t("title") + " · mobilize";
}

function showWho() {
  const me = state.me;
  if (!me) return;
  $("#who").textContent = `${me.display_name} · ${state.lang === "zh" ? me.role_zh : t(`role.${me.role}`)}${me.scope_name ? " · " + me.scope_name : ""}`;
}

async function login(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  $("#login-error").textContent = "";
  try {
    const { body } = await api("/auth/token", { method: "POST", body: new URLSearchParams(form) });
    state.token = body.access_token;
    sessionStorage.setItem("mobilize.token", state.token);
    event.target.reset();
    await start();
  } catch (e) {
    $("#login-error").textContent = e.status === 401 || e.status === 400 ? (e.message || t("loginFailed")) : (e.message || t("networkError"));
  }
}

function logout() {
  closeLive(); hideDrills();
  state.token = null; state.me = null;
  sessionStorage.removeItem("mobilize.token");
  $("#app-view").hidden = true; $("#login-view").hidden = false; $("#logout").hidden = true; $("#tabs").hidden = true;
  $("#who").textContent = "";
  document.body.classList.remove("drill-mode");
  $("#login-form [name=username]").focus();
}

async function start() {
  state.me = await get("/auth/me");
  [state.vocab, state.plans] = await Promise.all([get("/vocabulary"), get("/plans")]);
  showWho();
  $("#login-view").hidden = true; $("#app-view").hidden = false; $("#logout").hidden = false; $("#tabs").hidden = false;
  fillFilterSelects(); fillPlanSelects(); renderPlanChoices();
  await buildTree();
  if (!routeSeq) await route(); // a tab pressed while the tree loaded has routed already
}

// Routes can overlap (a tab pressed while the previous screen still loads); only the newest one may go on
// drawing after an await, so a slow earlier screen never takes the page back.
let routeSeq = 0;

async function route() {
  if (!state.token || !state.me) return;
  const seq = ++routeSeq;
  const current = () => seq === routeSeq;
  const [, screen = "readiness", id] = location.hash.split("/");
  const name = SCREENS.includes(screen) ? screen : "readiness";
  for (const s of SCREENS) $(`#${s}-view`).hidden = s !== name;
  $$("#tabs [data-screen]").forEach((b) => b.setAttribute("aria-current", b.dataset.screen === name ? "page" : "false"));
  $("#tree-card").hidden = name === "live" || name === "drills";
  $(".layout").classList.toggle("wide", name === "live" || name === "drills");
  if (name !== "drills") hideDrills();
  if (name !== "live") { closeLive(); document.body.classList.remove("drill-mode"); $("#drill-banner").hidden = true; }
  if (name === "activate") { scopeChanged(); }
  if (name === "drills") await showDrills(id);
  if (name === "live") {
    await showList();
    if (!current()) return;
    if (id) await openLive(Number(id), current);
    else { closeLive(); $("#live-panel").hidden = true; $("#live-empty").hidden = false; }
  }
}

setUnauthorizedHandler(() => { if (state.token) { logout(); $("#login-error").textContent = t("sessionExpired"); } });
$("#login-form").addEventListener("submit", login);
$("#logout").addEventListener("click", logout);
$$("#tabs [data-screen]").forEach((b) => b.addEventListener("click", () => { location.hash = `#/${b.dataset.screen}`; }));
window.addEventListener("hashchange", guarded(route));
$("#lang").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh"; localStorage.setItem("mobilize.lang", state.lang);
  applyLanguage(); showWho();
  if (!state.me) return;
  fillFilterSelects(); fillPlanSelects(); renderPlanChoices();
  const screen = location.hash.split("/")[1] || "readiness";
  if (screen === "live") { guarded(showList)(); relabelLive(); }
  else if (screen === "drills") relabelDrills();
  else if (screen === "activate") { scopeChanged(); guarded(showPreview)(); }
  else guarded(renderReadiness)();
});
onUnitChange(() => { if (!$("#activate-view").hidden) scopeChanged(); });
wireReadiness();
wireActivate((id) => { location.hash = `#/live/${id}`; });
wireLive();
wireDrills();
$("#notice").addEventListener("click", () => { $("#notice").hidden = true; });
applyLanguage();
if (state.token) start().catch(() => logout());
