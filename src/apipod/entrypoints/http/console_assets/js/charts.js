// Hand-made SVG charts: bars for counts, a line for latency. No library, no inline styles (CSP).

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
const W = 420, H = 170, L = 44, R = 8, T = 12, B = 24;

function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  for (const child of children.flat()) if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return el;
}

function short(n) {
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return Number.isInteger(n) ? String(n) : n.toFixed(n < 1 ? 3 : 1);
}

function hourLabel(t) {
  const d = new Date(t);
  return `${String(d.getUTCHours()).padStart(2, "0")}:00`;
}

// points: [{t: ISO string, v: number | null, v2?: number | null}]; kind "bar" or "line".
export function timeChart(title, points, { kind = "bar", unit = "", second = null } = {}) {
  const figure = h("figure", { class: "chart panel" }, h("figcaption", {}, h("h2", {}, title)));
  const values = points.flatMap((p) => [p.v, p.v2]).filter((v) => v !== null && v !== undefined);
  const max = Math.max(0, ...values) || 1;
  const plotW = W - L - R, plotH = H - T - B;
  const x = (i) => L + (points.length <= 1 ? plotW / 2 : (i * plotW) / (points.length - 1));
  const y = (v) => T + plotH - (v / max) * plotH;
  const label = `${title}: ${points.length} points, highest ${short(max)}${unit ? " " + unit : ""}`;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
  chart.append(svg("line", { class: "axis", x1: L, y1: T + plotH, x2: W - R, y2: T + plotH }));
  for (const f of [0, 0.5, 1]) {
    chart.append(svg("text", { x: L - 6, y: y(max * f) + 4, "text-anchor": "end" }, short(max * f)));
  }
  if (!points.length) {
    chart.append(svg("text", { class: "empty", x: W / 2, y: H / 2, "text-anchor": "middle" }, "No traffic in this period."));
  } else if (kind === "bar") {
    const bw = Math.max(2, Math.min(28, plotW / points.length - 3));
    points.forEach((p, i) => {
      const v = p.v || 0;
      const cx = points.length <= 1 ? L + plotW / 2 : L + bw / 2 + (i * (plotW - bw)) / (points.length - 1);
      chart.append(svg("rect", { class: "bar", x: cx - bw / 2, y: y(v), width: bw, height: T + plotH - y(v) },
        svg("title", {}, `${hourLabel(p.t)}: ${short(v)}${unit ? " " + unit : ""}`)));
    });
  } else {
    const path = (key) => points.map((p, i) => (p[key] === null || p[key] === undefined ? null : `${x(i)},${y(p[key])}`)).filter(Boolean);
    const main = path("v");
    if (main.length) chart.append(svg("polyline", { class: "line", points: main.join(" ") }));
    if (second) {
      const other = path("v2");
      if (other.length) chart.append(svg("polyline", { class: "line second", points: other.join(" ") }));
    }
    points.forEach((p, i) => { if (p.v !== null && p.v !== undefined) chart.append(svg("circle", { cx: x(i), cy: y(p.v), r: 2.5, class: "bar" }, svg("title", {}, `${hourLabel(p.t)}: ${short(p.v)} ${unit}`))); });
  }
  const step = Math.max(1, Math.ceil(points.length / 6));
  points.forEach((p, i) => {
    if (i % step === 0) chart.append(svg("text", { x: x(i), y: H - 8, "text-anchor": "middle" }, hourLabel(p.t)));
  });
  figure.append(chart);
  if (second) figure.append(h("p", { class: "muted" }, `Blue: ${unit ? "p50" : "first"}, orange: ${second}.`));
  return figure;
}
