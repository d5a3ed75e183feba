// Charts of an activation with Apache ECharts (web/vendor/echarts.min.js, installed from npm, served locally).
import { t } from "./core.js";

const SERIES = [
  ["filled", "#1f4e9c"], ["acknowledged", "#0a6b2d"], ["en_route", "#b86e00"], ["arrived", "#5a2d91"],
  ["declined", "#b3000c"], ["escalated", "#6b3a00"],
];
const TEXT = { color: "#111", fontSize: 14 };

export class StatusCharts {
  constructor(timeEl, communityEl) {
    this.points = [];
    this.time = window.echarts ? window.echarts.init(timeEl, null, { renderer: "canvas" }) : null;
    this.comm = window.echarts ? window.echarts.init(communityEl, null, { renderer: "canvas" }) : null;
    this.resize = () => { this.time?.resize(); this.comm?.resize(); };
    window.addEventListener("resize", this.resize);
  }

  /** Add one point of the status over time (from a snapshot or a stats tick). */
  add(at, total) {
    const when = at ? new Date(at).getTime() : Date.now();
    const last = this.points[this.points.length - 1];
    if (last && last.when === when) this.points.pop();
    this.points.push({ when, ...total });
    if (this.points.length > 2000) this.points.shift();
  }

  /** start: when the activation started (ms); the time axis runs from it to now (or the end). */
  render(communityRows, names, start, end) {
    if (!this.time) return;
    const now = end || Date.now();
    const last = this.points[this.points.length - 1];
    const pts = last && last.when < now ? [...this.points, { ...last, when: now }] : this.points;
    const min = Math.min(start || now, pts.length ? pts[0].when : now);
    const pad = (n) => String(n).padStart(2, "0");
    const short = now - min < 20 * 60000; // under 20 minutes: show seconds
    this.time.setOption({
      animation: false, textStyle: TEXT,
      tooltip: { trigger: "axis" },
      legend: { top: 0, textStyle: TEXT },
      grid: { left: 52, right: 20, top: 64, bottom: 32 },
      xAxis: { type: "time", min, max: Math.max(now, min + 60000), axisLabel: { ...TEXT, hideOverlap: true,
        formatter: (v) => { const d = new Date(v); return `${pad(d.getHours())}:${pad(d.getMinutes())}${short ? `:${pad(d.getSeconds())}` : ""}`; } } },
      yAxis: { type: "value", minInterval: 1, axisLabel: TEXT },
      series: SERIES.map(([key, color]) => ({ name: t(`k.${key}`), type: "line", step: "end", showSymbol: pts.length <= 2, symbolSize: 8,
        lineStyle: { width: 3 }, color, data: pts.map((p) => [p.when, p[key] || 0]) })),
    }, true);
    const codes = Object.keys(communityRows);
    this.comm.setOption({
      animation: false, textStyle: TEXT,
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      legend: { top: 0, textStyle: TEXT },
      grid: { left: 8, right: 20, top: 64, bottom: 24, containLabel: true },
      xAxis: { type: "value", minInterval: 1, axisLabel: TEXT },
      yAxis: { type: "category", inverse: true, data: codes.map((c) => names[c] || c), axisLabel: TEXT },
      series: [
        { name: t("k.arrived"), type: "bar", stack: "s", color: "#5a2d91", data: codes.map((c) => communityRows[c].arrived) },
        { name: t("k.ackNotArrived"), type: "bar", stack: "s", color: "#0a6b2d",
          data: codes.map((c) => Math.max(0, communityRows[c].acknowledged - communityRows[c].arrived)) },
        { name: t("k.notAnswered"), type: "bar", stack: "s", color: "#8aa1c9",
          data: codes.map((c) => Math.max(0, communityRows[c].filled - communityRows[c].acknowledged)) },
        { name: t("k.unfilled"), type: "bar", stack: "s", color: "#b3000c",
          data: codes.map((c) => Math.max(0, communityRows[c].slots - communityRows[c].filled)) },
      ],
    }, true);
    const h = Math.max(240, 100 + codes.length * 30);
    if (this.comm.getDom().style.height !== `${h}px`) { this.comm.getDom().style.height = `${h}px`; this.comm.resize(); }
  }

  dispose() {
    window.removeEventListener("resize", this.resize);
    this.time?.dispose(); this.comm?.dispose();
  }
}
