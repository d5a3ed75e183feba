// Parts of the live view drawn from REST reads: posts with holders, shortages, branches, the timeline.
import { $, el, t, table, vocab, zhEn, statusName, fmtTime, get, guarded } from "./core.js";

const reasonName = (r) => (window.I18N.zh[`reason.${r}`] ? t(`reason.${r}`) : r);
export const OPEN = ["notified", "acknowledged", "en_route", "arrived", "escalated"];
const skillList = (p) => {
  const all = p.skills_all.map((s) => vocab("skills", s));
  const any = p.skills_any.map((s) => vocab("skills", s));
  return [...all, ...(any.length ? [any.join(zhEn(" 或 ", " or "))] : [])].join(zhEn("、", ", "));
};
const holderChip = (o) => el("span", { class: `holder st-${o.status}`, "data-order": o.id, title: statusName(o.status) },
  o.name, o.leader_part ? `（${t("leaderShort")}）` : "", o.borrowed ? ` ⇄` : "", " ", el("small", {}, statusName(o.status)));

export function renderPosts(box, { posts, total, orders, communityNames, activationId }) {
  const byPost = new Map();
  for (const o of orders) {
    if (!OPEN.includes(o.status)) continue;
    if (!byPost.has(o.post_id)) byPost.set(o.post_id, []);
    byPost.get(o.post_id).push(o);
  }
  const rows = posts.map((p) => {
    const holders = byPost.get(p.id) || [];
    const short = p.filled < p.headcount;
    return el("tr", { class: short ? "short" : "", "data-post": p.id },
      el("td", {}, el("button", { type: "button", class: "linkish", onclick: guarded(() => openPost(activationId, p)) }, zhEn(p.name_zh, p.name_en)),
        p.leader_required ? el("small", { class: "tag" }, t("leaderRequired")) : "", el("br"),
        el("small", { class: "muted" }, vocab("wartime_groups", p.group))),
      el("td", {}, communityNames[p.community] || p.community, el("br"), el("small", {}, p.site)),
      el("td", { class: short ? "num warn" : "num ok" }, `${p.filled}/${p.headcount}`),
      el("td", { class: "holders" }, holders.length ? holders.map(holderChip) : el("span", { class: "warn" }, t("nobody"))));
  });
  box.replaceChildren(table(["post", "where", "#fill", "holders"], rows, { id: "posts-table" }),
    total > posts.length ? el("p", { class: "muted" }, t("showingOf", { n: posts.length, total })) : "");
}

async function openPost(activationId, p) {
  const data = await get(`/activations/${activationId}/orders?post=${p.id}&page_size=200`);
  $("#post-title").textContent = `${zhEn(p.name_zh, p.name_en)} · ${p.site}`;
  const rows = data.items.map((o) => el("tr", {}, el("td", {}, o.name), el("td", { class: "mono" }, o.phone),
    el("td", { class: `st-${o.status}` }, statusName(o.status)), el("td", {}, o.closed_reason ? reasonName(o.closed_reason) : ""),
    el("td", {}, o.borrowed ? t("yes") : ""), el("td", { class: "num" }, o.travel_minutes), el("td", {}, fmtTime(o.updated_at))));
  $("#post-body").replaceChildren(
    el("p", {}, `${t("fill")}: ${p.filled}/${p.headcount} · ${t("skills")}: ${skillList(p) || "—"} · ${t("priority")} ${p.priority}`),
    table(["name", "phone", "status", "reason", "borrowed", "#travelMin", "updated"], rows));
  $("#post-dialog").showModal();
  $("#post-close").focus();
}

export function renderShortages(box, { shortPosts, total, summary, communityNames, onFill }) {
  const bySkill = Object.entries(summary.shortages_by_skill || {});
  const rows = shortPosts.map((p) => {
    const button = el("button", { type: "button", class: "small", "data-fill": p.id }, t("borrowFromStreet"));
    button.addEventListener("click", () => onFill && onFill(p, button));
    return el("tr", { "data-post": p.id },
      el("td", {}, zhEn(p.name_zh, p.name_en)), el("td", {}, communityNames[p.community] || p.community),
      el("td", { class: "num warn" }, p.headcount - p.filled), el("td", {}, skillList(p) || t("anySkill")),
      el("td", {}, button));
  });
  box.replaceChildren(
    bySkill.length ? el("p", {}, el("b", {}, t("missingSkills")), " ",
      ...bySkill.map(([s, n]) => el("span", { class: "chip warn" }, `${vocab("skills", s)} −${n}`))) : "",
    shortPosts.length ? table(["post", "community", "#missing", "skillsNeeded", "borrowAction"], rows, { id: "shortages-table" })
      : el("p", { class: "ok big-ok" }, t("noShortage")),
    total > shortPosts.length ? el("p", { class: "muted" }, t("showingOf", { n: shortPosts.length, total })) : "",
    shortPosts.length ? el("p", { class: "muted" }, t("borrowHint")) : "");
}

export function renderBranches(box, branches, communityNames) {
  if (!branches.length) { box.replaceChildren(el("p", { class: "muted" }, t("noBranches"))); return; }
  box.replaceChildren(...branches.map((b) => {
    const sec = b.members.find((m) => m.person_id === b.secretary_id);
    const groups = new Map();
    for (const m of b.members) {
      const key = m.party_group || "";
      if (!groups.has(key)) groups.set(key, []);
      groups.get(key).push(m);
    }
    return el("details", { class: `branch${b.status === "active" ? "" : " closed"}` },
      el("summary", {}, el("b", {}, `${communityNames[b.community] || b.community} · ${b.groups.map((g) => vocab("wartime_groups", g)).join(" + ")}`),
        b.joint ? el("span", { class: "tag" }, t("jointBranch")) : "",
        ` · ${t("secretary")}: `, el("b", {}, sec ? sec.name : "—"), ` · ${t("membersN", { n: b.members.length })}`,
        b.status !== "active" ? el("span", { class: "tag" }, t(`branch.${b.status}`)) : ""),
      ...[...groups.entries()].map(([g, ms]) => el("p", { class: "members" },
        g ? el("b", {}, `${g}: `) : "", ms.map((m) => `${m.name}${m.group_head ? `（${t("groupHead")}）` : ""}`).join(zhEn("、", ", ")))));
  }));
}

/** One line of the timeline for an event. */
export function describe(m, ctx) {
  const b = m.body || {};
  const o = b.order && ctx.orders.get(b.order);
  const who = o ? o.name : b.order ? `#${b.order}` : "";
  const post = b.post && ctx.posts.get(b.post);
  const where = post ? zhEn(post.name_zh, post.name_en) : (o ? zhEn(o.post, o.post_en) : "");
  const comm = b.community ? (ctx.communityNames[b.community] || b.community) : "";
  const vars = { who, where, comm, reason: b.reason ? reasonName(b.reason) : "", n: b.missing ?? b.branches ?? b.count ?? b.released ?? "",
    from: b.from ? t(`level.${b.from}`) : "", to: b.to ? t(`level.${b.to}`) : "", note: b.note || "", team: b.team || "", filled: b.filled ?? "", slots: b.slots ?? "",
    skills: (b.skills || []).map((s) => vocab("skills", s)).join(zhEn("、", ", ")) };
  let key = `ev.${m.event}`;
  if (m.event === "order.notified" && b.replaces) key = "ev.order.replaced";
  const text = window.I18N.zh[key] ? t(key, vars) : `${m.event} ${JSON.stringify(b)}`;
  const kind = /declined|escalat|shortage|cancel/.test(m.event) ? "bad" : /acknowledged|arrived|en_route|started|formed/.test(m.event) ? "good" : "";
  return { text, kind };
}

export function renderTimeline(box, events, ctx) {
  const list = [...events.values()].sort((a, b) => b.seq - a.seq).slice(0, 150);
  box.replaceChildren(...list.map((m) => {
    const { text, kind } = describe(m, ctx);
    return el("li", { class: kind, "data-seq": m.seq, "data-event": m.event }, el("time", {}, fmtTime(m.at)), " ", text);
  }));
}
