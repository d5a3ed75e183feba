"""The drill report (演练报告): one self-contained HTML file a planner reads offline, zh-CN first.

Charts are inline SVG drawn here (no script, no CDN, no font download). The page answers three
questions in order: what happened (fill and arrival over time), what went short (skills,
communities, posts), and what to change in the roster or the policy (plain suggestions, then the
comparison of variants on the same seeds).
"""

from __future__ import annotations

import html
from typing import Any

__all__ = ["render_report"]

_COLORS = {"demand": "#888", "assigned": "#4a7fc1", "confirmed": "#e0a030", "arrived": "#2e9e5b"}
_LABELS = {"demand": "需求 demand", "assigned": "已派单 assigned", "confirmed": "已确认 confirmed",
           "arrived": "已到岗 arrived"}
_GROUP_COLORS = ("#c0392b", "#2e86c1", "#27ae60", "#8e44ad", "#d68910", "#17a589", "#7f8c8d", "#34495e")
_COUNTS = (("notified", "派单通知", "orders sent"), ("declined", "拒绝", "declines"),
           ("escalated_ack", "确认超时升级", "escalated: no acknowledgement"),
           ("escalated_arrive", "到岗超时升级", "escalated: not arrived"),
           ("step_tell_team_leader", "通知队长", "team leaders told"),
           ("reassigned", "超时改派", "reassigned after no answer"),
           ("backup_found", "找到备选人员", "backups found"), ("backup_none", "无人可派", "no backup available"),
           ("borrowed", "跨社区借调", "people borrowed from another community"),
           ("late_answers", "超时后才回复", "late answers"),
           ("late_after_reassign", "改派后才回复", "answers after the post went to someone else"),
           ("cancelled", "调级取消", "cancelled by a level change"), ("ill", "因病减员", "fell ill"),
           ("moved_by_road_cut", "道路中断改派", "moved by a road cut"))


def _e(x: Any) -> str:
    return html.escape(str(x))


def _m(x: float | None, unit: str = "") -> str:
    """Return a value for a table cell; None reads "未达到 never"."""
    if x is None:
        return '<span class="never">未达到 never</span>'
    return f"{x:.0f}{unit}" if abs(x) >= 10 or x == int(x) else f"{x:.1f}{unit}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.0f}%"


def _line_chart(t: list[float], lines: list[tuple[str, str, list[float]]], *, band: tuple[list, list, str] | None = None,
                ymax: float | None = None, percent: bool = False, width: int = 720, height: int = 260,
                marks: list[tuple[float, str]] = ()) -> str:
    """Return an inline SVG line chart over minutes ``t`` (lines: label, colour, values)."""
    left, right, top, bottom = 56, 230, 14, 34
    w, h = width - left - right, height - top - bottom
    tmax = max(t) if t else 1.0
    top_value = ymax or max([max(v) for _, _, v in lines if v] + [1.0])

    def x(v):
        return left + w * v / tmax

    def y(v):
        return top + h - h * min(v, top_value) / top_value

    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">']
    for k in range(5):
        v = top_value * k / 4
        label = f"{v * 100:.0f}%" if percent else f"{v:.0f}"
        out.append(f'<line x1="{left}" x2="{left + w}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{label}</text>')
    step = 30 if tmax <= 300 else 60 if tmax <= 720 else 120
    m = 0
    while m <= tmax + 1e-9:
        out.append(f'<text x="{x(m):.1f}" y="{top + h + 16}" text-anchor="middle">T+{m:.0f}</text>')
        m += step
    out.append(f'<text x="{left + w / 2:.0f}" y="{height - 2}" text-anchor="middle">分钟 minutes after the key press</text>')
    for at, label in marks:
        out.append(f'<line x1="{x(at):.1f}" x2="{x(at):.1f}" y1="{top}" y2="{top + h}" class="mark"/>'
                   f'<text x="{x(at) + 3:.1f}" y="{top + 10}" class="marktext">{_e(label)}</text>')
    if band is not None:
        lo, hi, colour = band
        pts = [f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, hi)] + [f"{x(a):.1f},{y(b):.1f}"
                                                                   for a, b in reversed(list(zip(t, lo)))]
        out.append(f'<polygon points="{" ".join(pts)}" fill="{colour}" opacity="0.18"/>')
    for i, (label, colour, values) in enumerate(lines):
        pts = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in zip(t, values))
        dash = ' stroke-dasharray="5 4"' if label.startswith("需求") else ""
        out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        ly = top + 12 + i * 18
        out.append(f'<rect x="{left + w + 12}" y="{ly - 9}" width="12" height="4" fill="{colour}"/>'
                   f'<text x="{left + w + 30}" y="{ly - 3}">{_e(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def _bar_chart(items: list[tuple[str, float]], colour: str = "#c0392b", unit: str = "") -> str:
    """Return an inline SVG horizontal bar chart (label, value), largest first."""
    if not items:
        return '<p class="ok">无 none</p>'
    width, row = 720, 22
    height = row * len(items) + 10
    vmax = max(v for _, v in items) or 1.0
    out = [f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" xmlns="http://www.w3.org/2000/svg">']
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        bw = 440 * v / vmax
        out.append(f'<text x="236" y="{y + 15}" text-anchor="end">{_e(label)}</text>'
                   f'<rect x="242" y="{y + 3}" width="{bw:.1f}" height="15" fill="{colour}"/>'
                   f'<text x="{248 + bw:.1f}" y="{y + 15}">{v:.1f}{unit}</text>')
    out.append("</svg>")
    return "".join(out)


def _advice(result: dict[str, Any]) -> list[str]:
    """Return plain suggestions (zh / en) from the baseline's numbers."""
    names = result.get("names", {})
    base = result["variants"][0]["aggregate"]
    tips = []
    skills = names.get("skills", {})
    for skill, missing in sorted(base["short_by_skill"].items(), key=lambda kv: -kv[1])[:3]:
        if missing < 0.5:
            continue
        zh = "、".join(skills.get(s, s) for s in skill.split("|")) if skill != "—" else "不限技能的人手"
        en = " or ".join(skill.split("|")) if skill != "—" else "people of any skill"
        tips.append(f"平均每次缺 <b>{missing:.0f}</b> 个需要「{_e(zh)}」的岗位名额：在缺口最大的社区招募或培训具备该技能的人员，"
                    f"或预先与相邻社区约定支援。 — On average {missing:.0f} slots needing {_e(en)} stay empty: recruit or "
                    f"train such people where the gap is largest, or agree support with neighbouring communities.")
    communities = names.get("communities", {})
    worst = sorted(base["short_by_community"].items(), key=lambda kv: -kv[1])[:3]
    if worst and worst[0][1] >= 0.5:
        listed = "、".join(f"{communities.get(c, c)}（{v:.0f}）" for c, v in worst)
        tips.append(f"缺口最集中的社区：{_e(listed)}。建议动员更多在职党员到这些社区报到，或扩充志愿服务队。 — The gaps gather in "
                    f"these communities: more reporting members or volunteers should register there.")
    counts = base["counts"]
    esc = (counts.get("escalated_ack", {}).get("mean") or 0)
    sent = counts.get("notified", {}).get("mean") or 0
    if sent and esc / sent > 0.15:
        tips.append(f"约 {esc / sent * 100:.0f}% 的派单未在时限内确认。核对手机号、开展响应演练，或评估确认时限是否过紧。 — "
                    f"About {esc / sent * 100:.0f}% of orders were not acknowledged in time: check phone numbers, train "
                    f"people to answer, or review whether the deadline is too tight.")
    never = [(k, p) for k, p in base["posts"].items() if p["never_staffed"] >= 0.5]
    if never:
        tips.append(f"{len(never)} 个岗位在多数推演中始终无人到岗（见下表），请平时编组到岗（预先明确到具体岗位）。 — {len(never)} posts "
                    f"were never staffed in most runs (table below): pre-assign people to them in peacetime.")
    for comp in result.get("comparisons", []):
        diff = comp["metrics"]["最终到岗 arrived at the end"]["difference"]["mean"]
        if diff is not None:
            better = "更多" if diff > 0 else "更少"
            tips.append(f"方案「{_e(comp['name'])}」与基准相比，结束时到岗人数平均{better} {abs(diff):.1f} 人（同一组随机种子）。 — "
                        f"Variant “{_e(comp['name'])}” ends with {diff:+.1f} people on site against the baseline (same seeds).")
    if not tips:
        tips.append("所有岗位都能按时到岗，花名册足以应对本场景。 — Every post was staffed in time: the roster copes with this "
                    "scenario.")
    return tips


def _variant_section(v: dict[str, Any], names: dict[str, Any], marks) -> str:
    a = v["aggregate"]
    s = a["series"]
    parts = []
    demand = s["demand"]
    lines = [(_LABELS[f], _COLORS[f], s[f]) for f in ("demand", "assigned", "confirmed", "arrived")]
    parts.append("<h3>岗位名额随时间 · Slots over time（平均 mean；阴影：10%–90% 的推演 shaded: 10th–90th percentile of runs）</h3>")
    parts.append(_line_chart(s["t"], lines, band=(s["arrived_p10"], s["arrived_p90"], _COLORS["arrived"]),
                             ymax=max(demand + [1]) * 1.05, marks=marks))
    change = a["last_demand_change"]["p50"] or 0
    for key, title in (("time_to", "一键启动后达到比例所用时间（分钟）· Minutes after the key press to reach a share of the slots"),
                       ("after_change", (f"最后一次需求变化（T+{change:g}）后达到比例所用时间（分钟）· Minutes after the last "
                                         f"change of demand (T+{change:g})"))):
        if key == "after_change" and not change:
            continue
        rows = []
        for kind, zh in (("confirmed", "已确认 confirmed"), ("arrived", "已到岗 arrived")):
            for share in ("50", "90", "100"):
                st = a[key][kind][share]
                rows.append(f"<tr><td>{zh} {share}%</td><td>{_m(st['p10'])}</td><td>{_m(st['p50'])}</td>"
                            f"<td>{_m(st['p90'])}</td><td>{_pct(st['reached'])}</td></tr>")
        parts.append(f"<h3>{title}</h3><table><tr><th></th><th>快 10% fast</th><th>中位 median</th><th>慢 90% slow</th>"
                     "<th>达到的推演 runs reaching it</th></tr>" + "".join(rows) + "</table>")
    groups = names.get("groups", {})
    glines = []
    for i, (g, series) in enumerate(sorted(a["groups"].items())):
        share = [arr / d if d else 0.0 for arr, d in zip(series["arrived"], series["demand"])]
        glines.append((groups.get(g, g), _GROUP_COLORS[i % len(_GROUP_COLORS)], share))
    parts.append("<h3>各战时工作组到岗率 · Arrived share per wartime group</h3>")
    parts.append(_line_chart(s["t"], glines, ymax=1.0, percent=True, marks=marks))
    skills = names.get("skills", {})
    items = sorted(((("、".join(skills.get(x, x) for x in k.split("|")) if k != "—" else "不限技能 any") + f" ({k})", v)
                    for k, v in a["short_by_skill"].items() if v > 0), key=lambda kv: -kv[1])[:15]
    parts.append("<h3>结束时缺口（按技能，平均名额）· Unfilled slots at the end by skill (mean)</h3>" + _bar_chart(items))
    communities = names.get("communities", {})
    items = sorted(((f"{communities.get(c, c)} {c}", v) for c, v in a["short_by_community"].items() if v > 0),
                   key=lambda kv: -kv[1])[:15]
    parts.append("<h3>结束时缺口（按社区）· Unfilled slots at the end by community (mean)</h3>"
                 + _bar_chart(items, "#d68910"))
    post_names = a.get("post_names", {})
    worst = sorted(a["posts"].items(), key=lambda kv: (-kv[1]["never_full"], -kv[1]["never_staffed"], kv[0]))
    worst = [(k, p) for k, p in worst if p["never_full"] > 0][:25]
    if worst:
        rows = []
        for k, p in worst:
            n = post_names.get(k, [k, k, "", "", [], 3])
            rows.append(f"<tr><td>{_e(n[0])}<br><small>{_e(k)}</small></td><td>{_e(communities.get(n[2], n[2]))}</td>"
                        f"<td>{_e(groups.get(n[3], n[3]))}</td><td>{p['arrived']:.1f} / {p['headcount']:.0f}</td>"
                        f"<td>{_pct(p['never_full'])}</td><td>{_pct(p['never_staffed'])}</td></tr>")
        parts.append("<h3>最常未满员的岗位 · Posts most often not fully staffed</h3><table><tr><th>岗位 post</th><th>社区 community</th>"
                     "<th>工作组 group</th><th>结束时到岗/需要 arrived/needed</th><th>从未满员 never full</th>"
                     "<th>无人到岗 never staffed</th></tr>" + "".join(rows) + "</table>")
    rows = []
    for code, zh, en in _COUNTS:
        st = a["counts"].get(code)
        if st is not None:
            rows.append(f"<tr><td>{zh} · {en}</td><td>{_m(st['mean'])}</td><td>{_m(st['p10'])}</td><td>{_m(st['p90'])}</td></tr>")
    parts.append("<h3>派单、拒绝、升级与改派（每次推演）· Orders, declines, escalations, reassignments per run</h3><table>"
                 "<tr><th></th><th>平均 mean</th><th>10%</th><th>90%</th></tr>" + "".join(rows) + "</table>")
    bt, bc = a["branch_time"], a["branch_count"]
    late = sorted(((b, x) for b, x in a["branches"].items() if x["formed"] < 0.9), key=lambda kv: kv[1]["formed"])[:15]
    parts.append(f"<h3>临时党支部 · Temporary party branches</h3><p>平均组建 <b>{_m(bc['mean'])}</b> 个临时党支部；"
                 f"3名党员到岗即视为“到岗成立”，中位用时 <b>{_m(bt['p50'], ' 分钟')}</b>，90% 在 {_m(bt['p90'], ' 分钟')} 内。 — "
                 f"{_m(bc['mean'])} branches on average; a branch counts as formed on the ground once 3 of its party members "
                 f"have arrived: median {_m(bt['p50'])} min, 90th percentile {_m(bt['p90'])} min.</p>")
    if late:
        rows = "".join(f"<tr><td>{_e(b)}</td><td>{_pct(x['formed'])}</td><td>{_m(x['p50'])}</td></tr>" for b, x in late)
        parts.append("<table><tr><th>支部 branch</th><th>到岗成立的推演 runs formed</th><th>中位用时 median min</th></tr>"
                     + rows + "</table>")
    return "".join(parts)


def _measured_section(result: dict[str, Any]) -> str:
    """Return the live drill's measured answers beside the prediction (``result["measured"]``), or ""."""
    me = result.get("measured")
    if not me:
        return ""
    s = result["variants"][0]["aggregate"]["series"]
    c = me["curve"]
    lines = [("预测已确认 predicted confirmed", "#8e9eab", s["confirmed"]), ("预测已到岗 predicted arrived", "#7fb3d5", s["arrived"]),
             ("实测已确认 measured confirmed", "#d68910", c["confirmed"][:c["on_grid"]]),
             ("实测已到岗 measured arrived", "#c0392b", c["arrived"][:c["on_grid"]])]
    chart = _line_chart(s["t"], lines, band=(s["arrived_p10"], s["arrived_p90"], "#2980b9"),
                        ymax=max(s["demand"] + [me["slots"], 1]) * 1.05)
    rows = "".join(f"<tr><td>{_e(r['metric'])}</td><td>{_m(r['measured'])}</td><td>{_m(r['predicted']['p10'])}</td>"
                   f"<td>{_m(r['predicted']['p50'])}</td><td>{_m(r['predicted']['p90'])}</td></tr>" for r in me["time_to"])
    pd = me["predicted_decline_rate"]
    return (f"<section><h2>实测与预测 · Measured vs predicted（演练启动 drill activation #{me['activation_id']}）</h2>"
            f"<p>实测：{me['notified']} 人收到派单，{_pct(me['answer_rate'])} 已回复，{_pct(me['decline_rate'])} 拒绝（预测拒绝率中位 "
            f"{_pct(pd['p50'])}，10%–90%：{_pct(pd['p10'])}–{_pct(pd['p90'])}）；确认用时中位 {_m(me['ack_delay']['p50'], ' 分钟')}，"
            f"确认后到岗用时中位 {_m(me['travel']['p50'], ' 分钟')}；观察了 {me['observed_minutes']:.0f} 分钟"
            f"{'（仍在进行）' if me['status'] == 'active' else ''}。 — Measured: {me['notified']} people notified, "
            f"{_pct(me['answer_rate'])} answered, {_pct(me['decline_rate'])} declined (predicted median {_pct(pd['p50'])}); "
            f"median {_m(me['ack_delay']['p50'])} min to acknowledge, {_m(me['travel']['p50'])} min from acknowledging to "
            f"arriving; {me['observed_minutes']:.0f} minutes observed. 名额 slots: {me['slots']} "
            f"(predicted {me['predicted_slots']:.0f}).</p>"
            "<h3>名额随时间：实测曲线与预测（阴影：预测到岗的 10%–90%）· Slots over time: measured against the prediction "
            "(shaded: predicted arrivals, 10th–90th percentile)</h3>" + chart +
            "<h3>达到比例所用时间（分钟）· Minutes to reach a share</h3><table><tr><th></th><th>实测 measured</th>"
            "<th>预测 快 10%</th><th>预测 中位 median</th><th>预测 慢 90%</th></tr>" + rows + "</table></section>")


def render_report(result: dict[str, Any]) -> str:
    """Return the HTML report of :func:`scenarios.montecarlo.run_many`'s result (one file, works offline)."""
    sc = result["scenario"]
    names = result.get("names", {})
    kinds_zh = {"LevelChange": "调整响应级别 level", "RoadCut": "道路中断 road cut", "Illness": "因病减员 illness",
                "ExtraPosts": "增设岗位 extra posts"}
    marks = [(i["at"], kinds_zh.get(i["type"], i["type"]).split(" ")[0]) for i in sc["injects"]]
    inject_rows = "".join(
        f"<tr><td>T+{i['at']:g}</td><td>{kinds_zh.get(i['type'], i['type'])}</td>"
        f"<td>{_e(', '.join(f'{k}={v}' for k, v in i.items() if k not in ('at', 'type') and v is not None))}</td></tr>"
        for i in sc["injects"]) + f"<tr><td>T+{sc['end']:g}</td><td>结束 end (战转平)</td><td></td></tr>"
    base = result["variants"][0]["aggregate"]
    arr90 = base["time_to"]["arrived"]["90"]
    headline = (f"在 {result['runs']} 次推演中（种子 {result['seed']} 起），结束时平均 <b>{_pct(base['fill_rate']['mean'])}</b> 的岗位名额"
                f"有人在岗（已派单），<b>{_pct(base['arrive_rate']['mean'])}</b> 已到岗；90% 名额到岗的中位用时为 "
                f"<b>{_m(arr90['p50'], ' 分钟')}</b>（{_pct(arr90['reached'])} 的推演做到）。 — Over {result['runs']} runs "
                f"(seeds from {result['seed']}), {_pct(base['fill_rate']['mean'])} of the slots were held at the end and "
                f"{_pct(base['arrive_rate']['mean'])} had their holder on site; 90% arrival took a median of "
                f"{_m(arr90['p50'])} minutes ({_pct(arr90['reached'])} of runs got there).")
    sections = []
    for v in result["variants"]:
        title = f"{_e(v['name'])} — 花名册 roster: {_e(v['roster'])}；跨社区借调 borrowing: {'是 on' if v['borrowing'] else '否 off'}"
        sections.append(f"<section><h2>{title}</h2>{_variant_section(v, names, marks)}</section>")
    comparison = ""
    if result.get("comparisons"):
        rows = []
        for comp in result["comparisons"]:
            for label, m in comp["metrics"].items():
                d = m["difference"]
                rows.append(f"<tr><td>{_e(comp['name'])}</td><td>{_e(label)}</td><td>{_m(m['baseline']['mean'])}</td>"
                            f"<td>{_m(m['variant']['mean'])}</td><td>{_m(d['mean'])}</td>"
                            f"<td>{_m(d['p10'])} … {_m(d['p90'])}</td></tr>")
        comparison = ("<section><h2>方案对比（同一组随机种子）· Comparison on the same seeds</h2><table><tr><th>方案 variant</th>"
                      "<th>指标 metric</th><th>基准 baseline</th><th>方案 variant</th><th>差值均值 mean difference</th>"
                      "<th>差值 10%…90%</th></tr>" + "".join(rows) + "</table></section>")
    tips = "".join(f"<li>{t}</li>" for t in _advice(result))
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>演练报告 · Drill report — {_e(sc['name'])}</title>
<style>
body{{font-family:"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;max-width:980px;margin:24px auto;padding:0 16px;
color:#222;line-height:1.55}}
h1{{font-size:1.6em;margin-bottom:.2em}} h2{{border-bottom:2px solid #c0392b;padding-bottom:4px;margin-top:2em}}
h3{{margin-top:1.6em;font-size:1.05em}} table{{border-collapse:collapse;width:100%;margin:.6em 0;font-size:.92em}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}} th{{background:#f6f6f6}}
svg text{{font-size:11px;fill:#333}} svg .grid{{stroke:#eee}} svg .mark{{stroke:#c0392b;stroke-dasharray:3 3}}
svg .marktext{{fill:#c0392b;font-size:10px}} .never{{color:#c0392b}} .box{{background:#fdf6ec;border-left:4px solid #d68910;
padding:8px 14px}} small{{color:#777}} .ok{{color:#2e9e5b}}
</style></head><body>
<h1>演练报告 · Drill report：{_e(sc['name'])}</h1>
<p>{_e(sc.get('description', ''))}</p>
<table><tr><th>范围 scope</th><td>{_e(names.get('scope', sc['scope']))} ({_e(sc['scope'])})</td><th>灾种 hazard</th>
<td>{_e(names.get('hazard', sc['hazard']))}</td></tr><tr><th>起始级别 level</th><td>{_e(sc['level'])}</td><th>开始时间 start</th>
<td>{_e(sc['start'])}</td></tr><tr><th>推演次数 runs</th><td>{result['runs']}（种子 seeds {result['seed']}…
{result['seed'] + result['runs'] - 1}）</td><th>脚本 file</th><td>{_e(sc['file'])}</td></tr></table>
<h2>结论 · What happened</h2><p class="box">{headline}</p>
<h2>建议 · What to change</h2><ul>{tips}</ul>
<h2>时间线 · Timeline</h2><table><tr><th>时间 time</th><th>注入 inject</th><th>内容 detail</th></tr>{inject_rows}</table>
{_measured_section(result)}
{comparison}
{''.join(sections)}
<h2>说明 · How to read this</h2><p><small>每次推演用产品自身的分派求解器、派单状态机、超时升级梯度和临时党支部规则，在虚拟时钟上重演一键启动后的全过程；
人员何时、是否回复，多快到岗，来自脚本中的行为模型。“已派单”指有人持有该岗位名额，“已确认”指其已确认收到，“已到岗”指已报告到岗。
达到比例的用时从最后一次需求变化（调级、增设岗位）之后开始计。 — Every run replays the activation through the product's own solver,
order state machine, escalation ladder and branch rules on a virtual clock; who answers, when, and how fast they travel
comes from the scenario's behaviour model. Times to reach a share count from the last change of demand.</small></p>
</body></html>"""
