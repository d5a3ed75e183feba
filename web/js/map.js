// A map of the scope's communities and posts drawn as SVG from their coordinates (no tiles, no network).
import { el, t, pct } from "./core.js";

const NS = "http://www.w3.org/2000/svg";
const svg = (tag, attrs, ...children) => {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};

export function fillColor(rate) {
  if (rate >= 0.999) return "#0a6b2d";
  if (rate >= 0.8) return "#7a7a00";
  return "#b3000c";
}

/**
 * communities: [{code, name, lat, lon}], stats: {code: {fill_rate, slots, ...}},
 * posts: [{id, lat, lon, headcount, filled, name}], selected: community code or null.
 */
export function drawMap(container, { communities, stats, posts, selected, onPick }) {
  const W = 640, H = 420, pad = 36;
  const points = [...communities.filter((c) => c.lat != null), ...posts];
  if (!points.length) { container.replaceChildren(el("p", { class: "muted" }, t("noCoordinates"))); return; }
  const lats = points.map((p) => p.lat), lons = points.map((p) => p.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  const kx = Math.cos((midLat * Math.PI) / 180); // equirectangular: shrink longitude by cos(latitude)
  const x0 = Math.min(...lons) * kx, x1 = Math.max(...lons) * kx, y0 = Math.min(...lats), y1 = Math.max(...lats);
  const span = Math.max(x1 - x0, y1 - y0, 0.004);
  const scale = Math.min((W - 2 * pad) / Math.max(x1 - x0, span * 0.3), (H - 2 * pad) / Math.max(y1 - y0, span * 0.3));
  const cx = (W - (x1 - x0) * scale) / 2, cy = (H - (y1 - y0) * scale) / 2;
  const X = (lon) => cx + (lon * kx - x0) * scale;
  const Y = (lat) => H - (cy + (lat - y0) * scale);

  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": t("mapLabel"), class: "map-svg" });
  root.append(svg("rect", { x: 0, y: 0, width: W, height: H, fill: "#f7f8fa" }));
  // Scale bar: 1 km.
  const km = (1 / 111.32) * scale;
  if (km > 8 && km < W / 2) {
    root.append(svg("line", { x1: 12, y1: H - 14, x2: 12 + km, y2: H - 14, stroke: "#111", "stroke-width": 3 }),
      svg("text", { x: 12, y: H - 20, class: "map-scale" }, "1 km"));
  }
  for (const p of posts) {
    const rate = p.headcount ? p.filled / p.headcount : 1;
    const jitter = ((p.id * 7919) % 13) - 6; // posts at one site do not hide each other
    root.append(svg("rect", { x: X(p.lon) - 4 + jitter, y: Y(p.lat) - 4 + ((p.id * 104729) % 11) - 5, width: 8, height: 8,
      fill: fillColor(rate), stroke: "#fff", "stroke-width": 1, class: "map-post" },
    svg("title", {}, `${p.name} · ${p.filled}/${p.headcount}`)));
  }
  for (const c of communities) {
    if (c.lat == null) continue;
    const s = stats[c.code] || {};
    const rate = s.slots ? s.fill_rate : 1;
    const g = svg("g", { class: `map-community${selected === c.code ? " selected" : ""}`, tabindex: 0, role: "button",
      "data-code": c.code, "aria-label": `${c.name} ${pct(rate)}` });
    const r = 10 + Math.min(14, Math.sqrt(s.slots || 0));
    g.append(svg("circle", { cx: X(c.lon), cy: Y(c.lat), r, fill: fillColor(rate), "fill-opacity": 0.25,
      stroke: fillColor(rate), "stroke-width": selected === c.code ? 4 : 2 }),
    svg("text", { x: X(c.lon), y: Y(c.lat) - r - 4, "text-anchor": "middle", class: "map-label" }, c.name),
    svg("text", { x: X(c.lon), y: Y(c.lat) + 5, "text-anchor": "middle", class: "map-rate" }, s.slots ? pct(rate) : ""),
    svg("title", {}, `${c.name} · ${s.filled ?? 0}/${s.slots ?? 0}`));
    if (onPick) {
      g.addEventListener("click", () => onPick(c.code));
      g.addEventListener("keydown", (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(c.code); } });
    }
    root.append(g);
  }
  container.replaceChildren(root, el("p", { class: "legend" },
    el("span", { class: "sw", style: "background:#0a6b2d" }), t("legendFull"), " ",
    el("span", { class: "sw", style: "background:#7a7a00" }), t("legendMostly"), " ",
    el("span", { class: "sw", style: "background:#b3000c" }), t("legendShort"), " · ", t("legendShapes")));
}
