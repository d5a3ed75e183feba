// Shared by every screen: state, translation, DOM helper, the API client and small formatters.
export const state = {
  lang: localStorage.getItem("mobilize.lang") || "zh",
  token: sessionStorage.getItem("mobilize.token"),
  me: null, vocab: null, plans: [], unit: null,
};

export const $ = (sel, root) => (root || document).querySelector(sel);
export const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

export function t(key, vars) {
  let text = (window.I18N[state.lang] || window.I18N.zh)[key];
  if (text === undefined) text = window.I18N.zh[key] ?? key;
  for (const [k, v] of Object.entries(vars || {})) text = text.split(`{${k}}`).join(v);
  return text;
}

/** A vocabulary item's name in the current language (English from the API, else from i18n, else the code). */
export function label(list, code) {
  const item = (list || []).find((x) => x.code === code);
  if (state.lang === "zh") return item ? item.zh : code;
  return (item && item.en) || window.I18N.en[`v.${code}`] || code;
}
export const vocab = (kind, code) => label(state.vocab && state.vocab[kind], code);
export const zhEn = (zh, en) => (state.lang === "zh" ? zh : en);
export const pct = (x) => `${Math.round((x || 0) * 1000) / 10}%`;

export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

export function table(headKeys, rows, attrs) {
  return el("table", Object.assign({ class: "grid-table" }, attrs || {}),
    // A key written "#key" heads a numeric (right-aligned) column.
    el("thead", {}, el("tr", {}, headKeys.map((k) => el("th", { scope: "col", class: k[0] === "#" ? "num" : null }, t(k.replace(/^#/, "")))))),
    el("tbody", {}, rows));
}

export class ApiError extends Error {
  constructor(status, body) {
    const err = body && body.error;
    super(err ? zhEn(err.message, err.message_en) : (status ? `HTTP ${status}` : t("networkError")));
    this.status = status; this.body = body; this.error = err || null;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }

export async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = Object.assign({}, options, { body: JSON.stringify(options.json) });
  }
  let response;
  try {
    response = await fetch(`/api/v1${path}`, Object.assign({ cache: "no-store" }, options, { headers }));
  } catch (e) {
    throw new ApiError(0, null);
  }
  // JSON bodies are parsed; with options.text a successful non-JSON body (an HTML report) comes back as text.
  const body = response.headers.get("content-type")?.includes("json") ? await response.json()
    : options.text && response.ok ? await response.text() : null;
  if (response.status === 401 && !path.startsWith("/auth/token")) { onUnauthorized(); throw new ApiError(401, body); }
  if (!response.ok) throw new ApiError(response.status, body);
  return { status: response.status, body };
}
export const get = async (path) => (await api(path)).body;

/** A random key of 128 bits, hex: one per deliberate confirmation. */
export function randomKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function fmtTime(iso, withDate) {
  if (!iso) return "—";
  // The API writes UTC; a value without an offset is UTC too.
  const d = new Date(/[zZ]|[+-]\d\d:?\d\d$/.test(iso) ? iso : iso + "Z");
  const opts = { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false };
  if (withDate) Object.assign(opts, { month: "2-digit", day: "2-digit" });
  return d.toLocaleString(state.lang === "zh" ? "zh-CN" : "en-GB", opts);
}

export const hazardName = (code) => {
  const p = state.plans.find((x) => x.hazard === code);
  return p ? zhEn(p.zh, p.en) : code;
};
export const levelName = (code) => (state.lang === "zh" ? `${{ I: "Ⅰ", II: "Ⅱ", III: "Ⅲ", IV: "Ⅳ" }[code] || code}级` : `Level ${code}`);
export const statusName = (code) => t(`st.${code}`);

export function drillBadge(drill) {
  return drill ? el("span", { class: "badge drill", title: t("drillHint") }, t("drill")) : el("span", { class: "badge real" }, t("real"));
}

/** Show a message in the page's live region (also read by screen readers). */
export function notify(text, kind) {
  const box = $("#notice");
  box.className = `notice ${kind || "info"}`;
  box.textContent = text || "";
  box.hidden = !text;
  clearTimeout(notify.timer);
  if (text && kind !== "error") notify.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

/** Run an async UI action, showing its error in the notice box instead of losing it. */
export function guarded(fn) {
  return async (...args) => {
    try { return await fn(...args); } catch (e) { if (e.status !== 401) notify(e.message || t("networkError"), "error"); }
  };
}
