// Overview: the last 24 hours of traffic by hour, and the top keys and models of the last 7 days.

import * as api from "../api.js";
import { fmt, h, replace, table } from "../dom.js";
import { timeChart } from "../charts.js";

const HOUR = 3600 * 1000;

export function hoursSince(hours) {
  return new Date(Math.floor((Date.now() - hours * HOUR) / HOUR) * HOUR).toISOString();
}

function rowsOf(answer) {
  return Array.isArray(answer) ? answer : (answer && (answer.data || answer.rows)) || [];
}

// Every hour of the period gets its point, traffic or not, so the time axis reads true.
function byBucket(rows, hours) {
  const buckets = new Map();
  const first = Date.parse(hoursSince(hours - 1));
  for (let i = 0; i < hours; i++) {
    const t = new Date(first + i * HOUR).toISOString();
    buckets.set(t, { t, requests: 0, tokens: 0, cost: 0, errors: 0, p50: null, p95: null });
  }
  for (const r of rows) {
    const t = new Date(r.bucket_start).toISOString();
    const b = buckets.get(t) || { t, requests: 0, tokens: 0, cost: 0, errors: 0, p50: null, p95: null };
    b.requests += r.requests || 0;
    b.tokens += (r.input_tokens || 0) + (r.output_tokens || 0);
    b.cost += Number(r.cost || 0);
    b.errors += r.errors || 0;
    if (r.latency_p50_ms !== null && r.latency_p50_ms !== undefined) b.p50 = Math.max(b.p50 || 0, r.latency_p50_ms);
    if (r.latency_p95_ms !== null && r.latency_p95_ms !== undefined) b.p95 = Math.max(b.p95 || 0, r.latency_p95_ms);
    buckets.set(t, b);
  }
  return [...buckets.values()].sort((a, b) => (a.t < b.t ? -1 : 1));
}

export function totalsByGroup(rows) {
  const groups = new Map();
  for (const r of rows) {
    const g = groups.get(r.group) || { group: r.group, requests: 0, tokens: 0, cost: 0, errors: 0 };
    g.requests += r.requests || 0;
    g.tokens += (r.input_tokens || 0) + (r.output_tokens || 0);
    g.cost += Number(r.cost || 0);
    g.errors += r.errors || 0;
    groups.set(r.group, g);
  }
  return [...groups.values()].sort((a, b) => b.requests - a.requests);
}

const TOP_COLUMNS = (label) => [
  { label, value: (g) => h("code", {}, g.group || "–") },
  { label: "Requests", class: "num", value: (g) => fmt.int(g.requests) },
  { label: "Tokens", class: "num", value: (g) => fmt.int(g.tokens) },
  { label: "Cost", class: "num", value: (g) => fmt.money(g.cost) },
];

export async function overview(main) {
  const [hourly, keys, keyList] = await Promise.all([
    api.get("/admin/usage/summary", { group_by: "model", bucket: "hour", since: hoursSince(24) }),
    api.get("/admin/usage/summary", { group_by: "key", bucket: "day", since: hoursSince(24 * 7) }),
    api.get("/admin/keys"),
  ]);
  const names = new Map((keyList.data || []).map((k) => [k.id, k.name]));
  const topKeys = totalsByGroup(rowsOf(keys)).slice(0, 10).map((g) => ({ ...g, name: names.get(g.group) }));
  const models = rowsOf(hourly);
  const currency = (hourly && hourly.currency) || "";
  const points = byBucket(models, 24);
  const sum = (k) => points.reduce((n, p) => n + p[k], 0);
  replace(
    main,
    h("h1", {}, "Overview"),
    h("p", { class: "muted" }, "The last 24 hours, by hour (UTC)."),
    h("div", { class: "cards" },
      [["Requests", fmt.int(sum("requests"))], ["Tokens", fmt.int(sum("tokens"))], ["Cost", fmt.money(sum("cost"), currency)], ["Errors", fmt.int(sum("errors"))]]
        .map(([label, value]) => h("div", { class: "card" }, h("div", { class: "label" }, label), h("div", { class: "value" }, value)))),
    h("div", { class: "grid" },
      timeChart("Requests", points.map((p) => ({ t: p.t, v: p.requests }))),
      timeChart("Tokens", points.map((p) => ({ t: p.t, v: p.tokens }))),
      timeChart("Cost", points.map((p) => ({ t: p.t, v: p.cost }))),
      timeChart("Errors", points.map((p) => ({ t: p.t, v: p.errors }))),
      timeChart("Latency", points.map((p) => ({ t: p.t, v: p.p50, v2: p.p95 })), { kind: "line", unit: "ms", second: "p95" }),
    ),
    h("div", { class: "grid" },
      h("section", { class: "panel", "aria-labelledby": "top-keys" }, h("h2", { id: "top-keys" }, "Top keys (7 days)"),
        table([{ label: "Name", value: (g) => g.name || "–" }, ...TOP_COLUMNS("Key")], topKeys, { empty: "No traffic yet." })),
      h("section", { class: "panel", "aria-labelledby": "top-models" }, h("h2", { id: "top-models" }, "Top models (24 hours)"),
        table(TOP_COLUMNS("Model"), totalsByGroup(models).slice(0, 10), { empty: "No traffic yet." })),
    ),
  );
}
