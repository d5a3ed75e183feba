// 演练推演 Drills: pick a shipped scenario (or upload / paste a YAML), set runs and seed, start; the server runs
// the Monte Carlo in the background; this page polls the job's progress and, when it is done, shows the
// self-contained report (fetched with the operator's token, shown in a sandboxed frame, or in a new tab).
// Opened as #/drills/<activation id> it compares a live drill activation's measured answers with the prediction.
import { $, t, el, api, get, zhEn, fmtTime, guarded, notify, randomKey } from "./core.js";

const D = { scenarios: [], jobs: [], timer: null, shown: null, key: null, keyFor: null, activation: null };
const ACTIVE = ["queued", "running"];

export function wireDrills() {
  $("#drill-form").addEventListener("submit", (e) => { e.preventDefault(); guarded(startJob)(); });
  $("#drill-form").addEventListener("input", () => { D.key = null; });
  $("#drill-scenario").addEventListener("change", scenarioChanged);
  $("#drill-file").addEventListener("change", async (e) => {
    const file = e.target.files[0];
    if (file) { $("#drill-yaml").value = await file.text(); D.key = null; }
  });
  $("#drill-compare-clear").addEventListener("click", () => { location.hash = "#/drills"; });
}

/** Show the screen: the shipped scenarios, the jobs, and (``activationId``) the live drill to compare with. */
export async function showDrills(activationId) {
  D.activation = activationId ? Number(activationId) : null;
  $("#drill-compare").hidden = !D.activation;
  if (D.activation) $("#drill-compare-text").textContent = t("drillCompareWith", { id: D.activation });
  if (!D.scenarios.length) {
    D.scenarios = await get("/drills/scenarios");
    renderScenarios();
  }
  await refreshJobs();
}

export function hideDrills() { clearTimeout(D.timer); D.timer = null; }

export function relabelDrills() {
  if (D.scenarios.length) renderScenarios();
  renderJobs();
  const job = D.jobs.find((j) => j.id === D.shown);
  if (job && $("#drill-current-head")) {
    $("#drill-current-head").replaceWith(head(job));
    $("#drill-current-summary")?.replaceWith(summaryLine(job));
    $("#drill-report-tools")?.replaceWith(tools(job, $("#drill-report-open").href));
  }
  if (D.activation) $("#drill-compare-text").textContent = t("drillCompareWith", { id: D.activation });
}

function renderScenarios() {
  const sel = $("#drill-scenario");
  const keep = sel.value || preferred()?.name;
  sel.replaceChildren(...D.scenarios.map((s) => el("option", { value: s.name }, s.title)),
    el("option", { value: "" }, t("drillOwnYaml")));
  sel.value = keep ?? "";
  scenarioChanged();
}

function scenarioChanged() {
  const s = D.scenarios.find((x) => x.name === $("#drill-scenario").value);
  $("#drill-own").hidden = !!s;
  $("#drill-about").textContent = s ? s.description : t("drillOwnHint");
  if (!s && !$("#drill-yaml").value && preferred()) $("#drill-yaml").value = preferred().yaml;
}

// The street-level flood is the quick one to start from.
const preferred = () => D.scenarios.find((x) => x.name === "street_flood") || D.scenarios[0];

function request() {
  const f = new FormData($("#drill-form"));
  const body = { runs: Number(f.get("runs")), seed: Number(f.get("seed")), compare: f.get("compare") === "on" };
  if (f.get("scenario")) body.scenario = f.get("scenario"); else body.yaml = f.get("yaml");
  if (D.activation) body.activation_id = D.activation;
  return body;
}

async function startJob() {
  const body = request();
  const same = JSON.stringify(body);
  if (!D.key || D.keyFor !== same) { D.key = randomKey(); D.keyFor = same; } // a retry of the same request reuses its key
  $("#drill-errors").replaceChildren();
  const button = $("#drill-start");
  button.disabled = true;
  try {
    const { body: job } = await api("/drills/jobs", { method: "POST", json: body, headers: { "Idempotency-Key": D.key } });
    D.key = null;
    D.shown = job.id;
    notify(t("drillStarted", { id: job.id }), "ok");
    await refreshJobs();
  } catch (e) {
    if (e.status === 422 || e.status === 409) showErrors(e); else throw e;
  } finally { button.disabled = false; }
}

function showErrors(e) {
  const problems = (e.error && e.error.problems) || [];
  $("#drill-errors").replaceChildren(el("p", { class: "error" }, e.message),
    problems.length ? el("ul", { class: "error" }, problems.map((p) => el("li", {},
      [p.file, p.row ? t("drillRow", { row: p.row }) : null, p.field ? t("drillField", { field: p.field }) : null].filter(Boolean).join(" · "),
      "：", zhEn(p.reason_zh, p.reason_en)))) : "");
}

async function refreshJobs() {
  clearTimeout(D.timer);
  if ($("#drills-view").hidden) return;
  D.jobs = await get("/drills/jobs");
  renderJobs();
  const shown = D.jobs.find((j) => j.id === D.shown);
  if (shown) renderCurrent(shown);
  if (D.jobs.some((j) => ACTIVE.includes(j.status))) D.timer = setTimeout(() => guarded(refreshJobs)(), 700);
}

function progressOf(job) {
  const total = job.total || job.runs || 1;
  return el("span", { class: "drill-progress" },
    el("progress", { max: total, value: job.done || 0, "aria-label": t("drillProgress") }), ` ${job.done || 0} / ${total}`);
}

function renderJobs() {
  const rows = D.jobs.map((j) => el("tr", { "data-job": j.id, class: j.id === D.shown ? "selected" : "" },
    el("td", {}, fmtTime(j.created_at, true)),
    el("td", {}, D.scenarios.find((x) => x.name === j.scenario)?.title || j.scenario || j.file, j.activation_id ? el("small", {}, ` · ${t("drillVsActivation", { id: j.activation_id })}`) : ""),
    el("td", { class: "num" }, `${j.runs} · ${j.seed}`),
    el("td", {}, el("span", { class: `badge job-${j.status}` }, t(`job.${j.status}`))),
    el("td", {}, progressOf(j)),
    el("td", {}, actions(j))));
  $("#drill-jobs").replaceChildren(rows.length ? el("table", { class: "grid-table" },
    el("thead", {}, el("tr", {}, ["drillWhen", "drillScenario", "drillRunsSeed", "status", "drillProgress", ""].map((k) =>
      el("th", { scope: "col" }, k ? t(k) : "")))), el("tbody", {}, rows)) : el("p", { class: "muted" }, t("drillNoJobs")));
}

function actions(job) {
  const out = [];
  if (job.has_report) out.push(el("button", { type: "button", class: "primary small", onclick: () => { D.shown = job.id; guarded(showReport)(job); } }, t("drillOpenReport")));
  if (ACTIVE.includes(job.status)) {
    out.push(el("button", { type: "button", class: "small", onclick: () => { D.shown = job.id; renderCurrent(job); } }, t("drillWatch")));
    out.push(el("button", { type: "button", class: "danger small", onclick: guarded(() => cancel(job)) }, t("drillCancel")));
  }
  return out;
}

async function cancel(job) {
  await api(`/drills/jobs/${job.id}/cancel`, { method: "POST" });
  notify(t("drillCancelled"), "ok");
  await refreshJobs();
}

function renderCurrent(job) {
  const box = $("#drill-current");
  box.hidden = false;
  if (job.status === "done" && job.has_report) {
    if (box.dataset.job === String(job.id) && box.dataset.status === "done") return;  // dataset values are strings
    box.dataset.job = job.id; box.dataset.status = "done";
    box.replaceChildren(head(job), summaryLine(job));
    guarded(showReport)(job);
    return;
  }
  box.dataset.job = job.id; box.dataset.status = job.status;
  const err = job.error ? el("p", { class: "error" }, zhEn(job.error.message, job.error.message_en)) : "";
  box.replaceChildren(head(job), el("p", { id: "drill-live-progress" }, progressOf(job)), err);
}

function head(job) {
  return el("h2", { id: "drill-current-head" }, t("drillJob", { id: job.id }), " ",
    el("span", { class: `badge job-${job.status}` }, t(`job.${job.status}`)));
}

function tools(job, url) {
  return el("p", { id: "drill-report-tools", class: "live-actions" },
    el("a", { href: url, target: "_blank", rel: "noopener", class: "button primary", id: "drill-report-open" }, t("drillOpenNewTab")),
    el("a", { href: url, download: `drill-${job.id}.html`, class: "button" }, t("drillDownload")));
}

function summaryLine(job) {
  const s = job.summary || {};
  const pct = (x) => (x === null || x === undefined ? "—" : `${Math.round(x * 1000) / 10}%`);
  return el("p", { class: "muted", id: "drill-current-summary" }, t("drillSummary", { fill: pct(s.fill_rate), arrived: pct(s.arrive_rate),
    t90: s.arrived_90_p50 === null || s.arrived_90_p50 === undefined ? "—" : Math.round(s.arrived_90_p50), secs: s.runs_s ?? "—" }));
}

async function reportHtml(job) {
  // Through api(): an expired log-in (401) goes back to the log-in screen like every other call.
  try {
    return (await api(`/drills/jobs/${job.id}/report`, { text: true })).body;
  } catch (e) {
    if (e.status === 401) throw e;
    throw new Error(t("drillNoReport"));
  }
}

let reportUrl = null;  // the blob URL of the report shown; given back when another replaces it

async function showReport(job) {
  const html = await reportHtml(job);
  const box = $("#drill-current");
  box.hidden = false;
  if (box.dataset.job !== String(job.id) || !$("#drill-report-frame")) {
    box.dataset.job = job.id; box.dataset.status = "done";
    box.replaceChildren(head(job), summaryLine(job));
  }
  if (reportUrl) URL.revokeObjectURL(reportUrl);
  const url = reportUrl = URL.createObjectURL(new Blob([html], { type: "text/html" }));
  const frame = el("iframe", { id: "drill-report-frame", class: "drill-report", sandbox: "", title: t("drillReport"), srcdoc: html });
  $("#drill-report-frame")?.remove(); $("#drill-report-tools")?.remove();
  box.append(tools(job, url), frame);
}
