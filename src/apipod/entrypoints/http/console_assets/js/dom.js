// Building DOM nodes without innerHTML: every value from the API becomes text, never markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "value") el.value = value;
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let ids = 0;
export function field(label, control) {
  const id = control.id || `f${++ids}`;
  control.id = id;
  return h("label", { for: id }, label, control);
}

export function table(columns, rows, { empty = "Nothing yet." } = {}) {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)))),
    h("tbody", {}, rows.map((row) => h("tr", {}, columns.map((c) => h("td", { class: c.class }, c.value(row)))))),
  );
}

export function errorBox(error) {
  const field = error && error.field ? ` (${error.field})` : "";
  return h("p", { class: "error", role: "alert" }, `${error && error.message ? error.message : error}${field}`);
}

export const fmt = {
  int: (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US")),
  money: (n, currency = "") => (n === null || n === undefined ? "–" : `${Number(n).toFixed(4)}${currency ? " " + currency : ""}`),
  ms: (n) => (n === null || n === undefined ? "–" : `${Math.round(Number(n))} ms`),
  time: (s) => (s ? new Date(s).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–"),
};
