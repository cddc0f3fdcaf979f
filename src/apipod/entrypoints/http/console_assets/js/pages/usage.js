// The usage explorer: filters, grouping by hour or day, the rows themselves, and CSV downloads.

import * as api from "../api.js";
import { errorBox, field, fmt, h, replace, table } from "../dom.js";
import { hoursSince, totalsByGroup } from "./overview.js";

const FILTERS = [
  ["key_id", "Key id"], ["plan", "Plan"], ["model", "Model asked"], ["upstream_model", "Upstream model"], ["provider", "Provider"],
];
const STATUSES = ["success", "cancelled", "upstream_error", "rejected", "quota_exceeded", "rate_limited"];

export async function usage(main) {
  const inputs = Object.fromEntries(FILTERS.map(([name]) => [name, h("input", { name })]));
  const status = h("select", { name: "status" }, h("option", { value: "" }, "any"),
    STATUSES.map((s) => h("option", { value: s }, s.replace("_", " "))));
  const since = h("input", { type: "datetime-local", name: "since", value: hoursSince(24).slice(0, 16) });
  const until = h("input", { type: "datetime-local", name: "until" });
  const groupBy = h("select", { name: "group_by" }, ["model", "key", "plan", "upstream_model", "provider"].map((g) => h("option", { value: g }, g.replace("_", " "))));
  const bucket = h("select", { name: "bucket" }, ["hour", "day"].map((b) => h("option", { value: b }, b)));
  const summaryBox = h("div", {});
  const rowsBox = h("div", {});
  const csv = h("a", { href: "/admin/usage.csv", download: "usage.csv" }, "Download rows as CSV");
  const summaryCsv = h("a", { href: "/admin/usage/summary.csv", download: "usage-summary.csv" }, "Download totals as CSV");
  const errors = h("div", { "aria-live": "polite" });

  function params() {
    const p = Object.fromEntries(FILTERS.map(([name]) => [name, inputs[name].value.trim()]));
    p.status = status.value;
    p.since = since.value ? new Date(since.value + "Z").toISOString() : "";
    p.until = until.value ? new Date(until.value + "Z").toISOString() : "";
    return p;
  }

  async function load() {
    const p = params();
    csv.setAttribute("href", "/admin/usage.csv" + api.query(p));
    summaryCsv.setAttribute("href", "/admin/usage/summary.csv" + api.query({ ...p, group_by: groupBy.value, bucket: bucket.value }));
    // Each part on its own: one failing call leaves the other's answer on screen.
    const [summaryAnswer, rowsAnswer] = await Promise.allSettled([
      api.get("/admin/usage/summary", { ...p, group_by: groupBy.value, bucket: bucket.value }),
      api.get("/admin/usage", { ...p, limit: 100 }),
    ]);
    const failures = [summaryAnswer, rowsAnswer].filter((a) => a.status === "rejected").map((a) => errorBox(a.reason));
    replace(errors, failures);
    if (summaryAnswer.status === "fulfilled") {
      const summary = summaryAnswer.value;
      const summaryRows = Array.isArray(summary) ? summary : summary.data || summary.rows || [];
      replace(summaryBox, h("h2", { id: "usage-totals" }, `Totals by ${groupBy.value.replace("_", " ")}`), table([
        { label: "Group", value: (g) => h("code", {}, g.group || "–") },
        { label: "Requests", class: "num", value: (g) => fmt.int(g.requests) },
        { label: "Tokens", class: "num", value: (g) => fmt.int(g.tokens) },
        { label: "Cost", class: "num", value: (g) => fmt.money(g.cost) },
        { label: "Errors", class: "num", value: (g) => fmt.int(g.errors) },
      ], totalsByGroup(summaryRows), { empty: "No usage matches." }),
      h("h3", {}, `Per ${bucket.value}`), table([
        { label: bucket.value === "hour" ? "Hour" : "Day", value: (r) => fmt.time(r.bucket_start) },
        { label: "Group", value: (r) => h("code", {}, r.group || "–") },
        { label: "Requests", class: "num", value: (r) => fmt.int(r.requests) },
        { label: "Input", class: "num hide-narrow", value: (r) => fmt.int(r.input_tokens) },
        { label: "Output", class: "num hide-narrow", value: (r) => fmt.int(r.output_tokens) },
        { label: "Cost", class: "num", value: (r) => fmt.money(r.cost) },
        { label: "p50", class: "num hide-narrow", value: (r) => fmt.ms(r.latency_p50_ms) },
        { label: "p95", class: "num hide-narrow", value: (r) => fmt.ms(r.latency_p95_ms) },
      ], summaryRows, { empty: "–" }));
    }
    if (rowsAnswer.status === "fulfilled") {
      const list = rowsAnswer.value.data || [];
      replace(rowsBox, h("h2", { id: "usage-rows" }, "Requests"), table([
        { label: "Time", value: (r) => fmt.time(r.timestamp) },
        { label: "Key", class: "hide-narrow", value: (r) => h("code", {}, r.key_id || "–") },
        { label: "Model", value: (r) => r.requested_model },
        { label: "Upstream", class: "hide-narrow", value: (r) => r.upstream_provider || "–" },
        { label: "Status", value: (r) => h("span", { class: `badge ${r.status === "success" ? "ok" : "bad"}` }, r.status) },
        { label: "Tokens", class: "num", value: (r) => fmt.int(r.token_count) },
        { label: "Cost", class: "num", value: (r) => fmt.money(r.cost) },
        { label: "Latency", class: "num hide-narrow", value: (r) => fmt.ms(r.latency_ms) },
      ], list, { empty: "No requests match." }));
    }
  }

  const form = h("form", { class: "inline", role: "search", onsubmit: (e) => { e.preventDefault(); load(); } },
    FILTERS.map(([name, label]) => field(label, inputs[name])), field("Status", status),
    field("Since (UTC)", since), field("Until (UTC)", until), field("Group by", groupBy), field("Per", bucket),
    h("button", { type: "submit", class: "primary" }, "Show"));
  replace(main, h("h1", {}, "Usage"), h("section", { class: "panel" }, form, h("p", { class: "actions" }, csv, " · ", summaryCsv)), errors,
    h("section", { class: "panel", "aria-labelledby": "usage-totals" }, summaryBox),
    h("section", { class: "panel", "aria-labelledby": "usage-rows" }, rowsBox));
  await load();
}
