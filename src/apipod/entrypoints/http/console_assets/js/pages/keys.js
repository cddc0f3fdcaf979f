// Keys: list with filters, create (the secret is shown once, with a copy button), revoke, rotate, edit
// plan / name / expiry, and each key's usage and remaining budget.

import * as api from "../api.js";
import { errorBox, field, fmt, h, replace, table } from "../dom.js";

function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

function localOf(iso) {
  return iso ? new Date(iso).toISOString().slice(0, 16) : "";
}

function planSelect(plans, selected, name = "tier") {
  return h("select", { name }, plans.map((p) => h("option", { value: p.name, selected: p.name === selected }, p.name)));
}

function secretOnce(title, body) {
  const copy = h("button", { type: "button", onclick: async () => {
    try {
      await navigator.clipboard.writeText(body.api_key);
      copy.textContent = "Copied";
    } catch {
      copy.textContent = "Select and copy by hand";
    }
  } }, "Copy");
  return h("div", { class: "notice", role: "status" }, h("h2", {}, title),
    h("p", {}, "This is the only time the key is shown. Hand it over now."),
    h("div", { class: "secret-once" }, h("code", { "data-testid": "new-key" }, body.api_key), copy));
}

function statusOf(key) {
  if (key.status) return key.status;
  if (!key.active) return "revoked";
  return key.expires_at && new Date(key.expires_at) <= new Date() ? "expired" : "active";
}

function status(key) {
  const text = statusOf(key);
  return h("span", { class: `badge ${text === "active" ? "ok" : text === "expired" ? "warn" : "bad"}` }, text);
}

export async function keys(main) {
  const filters = { status: "", plan: "", q: "" };
  let cursor = null;
  const catalog = await api.get("/admin/catalog");
  const plans = catalog.plans || [];
  const listBox = h("div", {});
  const flash = h("div", { "aria-live": "polite" });
  const detail = h("div", {});

  async function load(more = false) {
    const answer = await api.get("/admin/keys", { ...filters, limit: 50, cursor: more ? cursor : "" });
    cursor = answer.next_cursor || null;
    const rows = answer.data || [];
    replace(listBox, table([
      { label: "Name", value: (k) => k.name || h("span", { class: "muted" }, "–") },
      { label: "Key", value: (k) => h("code", {}, k.prefix ? `${k.prefix}…` : k.id) },
      { label: "Plan", value: (k) => k.tier },
      { label: "Status", value: status },
      { label: "Expires", class: "hide-narrow", value: (k) => fmt.time(k.expires_at) },
      { label: "Last used", class: "hide-narrow", value: (k) => fmt.time(k.last_used_at) },
      { label: "Actions", value: (k) => h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => edit(k), "aria-label": `Edit ${k.name || k.id}` }, "Edit"),
        h("button", { type: "button", onclick: () => showUsage(k), "aria-label": `Usage of ${k.name || k.id}` }, "Usage"),
        k.active ? h("button", { type: "button", onclick: () => rotate(k), "aria-label": `Rotate ${k.name || k.id}` }, "Rotate") : null,
        k.active
          ? h("button", { type: "button", class: "danger", onclick: () => revoke(k), "aria-label": `Revoke ${k.name || k.id}` }, "Revoke")
          : h("button", { type: "button", onclick: () => reactivate(k), "aria-label": `Reactivate ${k.name || k.id}` }, "Reactivate")) },
    ], rows, { empty: "No keys match." }),
    cursor ? h("button", { type: "button", onclick: () => load(true) }, "Next page") : null);
  }

  async function act(work) {
    replace(flash);
    try {
      await work();
      await load();
    } catch (error) {
      replace(flash, errorBox(error));
    }
  }

  const revoke = (k) => act(async () => {
    if (!window.confirm(`Revoke the key "${k.name || k.id}"? Requests with it stop at once.`)) return;
    await api.post(`/admin/keys/${encodeURIComponent(k.id)}/revoke`);
    replace(flash, h("p", { class: "notice", role: "status" }, `Revoked ${k.name || k.id}.`));
  });

  const reactivate = (k) => act(async () => {
    await api.post(`/admin/keys/${encodeURIComponent(k.id)}/reactivate`);
    replace(flash, h("p", { class: "notice", role: "status" }, `Reactivated ${k.name || k.id}.`));
  });

  const rotate = (k) => act(async () => {
    if (!window.confirm(`Give "${k.name || k.id}" a new secret? The old one stops working.`)) return;
    const body = await api.post(`/admin/keys/${encodeURIComponent(k.id)}/rotate`, {});
    replace(flash, secretOnce(`New secret for ${k.name || k.id}`, body));
  });

  const change = (k, fields) => act(async () => {
    await api.patch(`/admin/keys/${encodeURIComponent(k.id)}`, fields);
    replace(detail);
    replace(flash, h("p", { class: "notice", role: "status" }, `Saved ${k.name || k.id}.`));
  });

  function edit(k) {
    const name = h("input", { name: "name", value: k.name || "" });
    const tier = planSelect(plans, k.tier);
    const expires = h("input", { type: "datetime-local", name: "expires_at", value: localOf(k.expires_at) });
    replace(detail, h("section", { class: "panel", "aria-labelledby": "edit-key" },
      h("h2", { id: "edit-key" }, `Edit ${k.name || k.id}`),
      h("form", { class: "inline", onsubmit: (e) => {
        e.preventDefault();
        change(k, { name: name.value, tier: tier.value, expires_at: isoOrNull(expires.value) });
      } }, field("Name", name), field("Plan", tier), field("Expires (UTC, empty = never)", expires),
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", onclick: () => replace(detail) }, "Cancel"))));
    name.focus();
  }

  async function showUsage(k) {
    const id = encodeURIComponent(k.id);
    const [usage, budgets] = await Promise.allSettled([
      api.get(`/admin/keys/${id}/usage`, { limit: 20 }),
      api.get(`/admin/keys/${id}/budgets`),
    ]);
    const budgetRows = budgets.status === "fulfilled" ? budgets.value.data || [] : [];
    const rows = usage.status === "fulfilled" ? usage.value.data || [] : [];
    replace(detail, h("section", { class: "panel", "aria-labelledby": "key-usage" },
      h("h2", { id: "key-usage" }, `Usage of ${k.name || k.id}`),
      [usage, budgets].filter((a) => a.status === "rejected").map((a) => errorBox(a.reason)),
      h("h3", {}, "Budgets"),
      table([
        { label: "Window", value: (b) => b.window },
        { label: "Unit", value: (b) => b.unit },
        { label: "Limit", class: "num", value: (b) => String(b.limit) },
        { label: "Used", class: "num", value: (b) => String(b.used) },
        { label: "Remaining", class: "num", value: (b) => String(b.remaining) },
        { label: "Resets", class: "hide-narrow", value: (b) => fmt.time(b.resets_at) },
      ], budgetRows, { empty: "No budgets on this key's plan." }),
      h("h3", {}, "Latest requests"),
      table([
        { label: "Time", value: (r) => fmt.time(r.timestamp) },
        { label: "Model", value: (r) => r.requested_model },
        { label: "Status", value: (r) => r.status },
        { label: "Tokens", class: "num", value: (r) => fmt.int(r.token_count) },
        { label: "Cost", class: "num", value: (r) => fmt.money(r.cost) },
      ], rows, { empty: "No requests yet." }),
      h("button", { type: "button", onclick: () => replace(detail) }, "Close")));
  }

  const name = h("input", { name: "name", required: true, placeholder: "customer or app" });
  const tier = planSelect(plans, plans.length ? plans[0].name : "");
  const expires = h("input", { type: "datetime-local", name: "expires_at" });
  const create = h("form", { class: "inline", onsubmit: (e) => {
    e.preventDefault();
    act(async () => {
      const body = { name: name.value, tier: tier.value };
      if (expires.value) body.expires_at = isoOrNull(expires.value);
      const issued = await api.post("/admin/create-key", body);
      name.value = "";
      replace(flash, secretOnce(`Key created for ${issued.name || issued.id}`, issued));
    });
  } }, field("Name", name), field("Plan", tier), field("Expires (optional)", expires),
  h("button", { type: "submit", class: "primary" }, "Create key"));

  const statusFilter = h("select", { name: "status", onchange: () => { filters.status = statusFilter.value; load(); } },
    h("option", { value: "" }, "any"), ["active", "revoked", "expired"].map((s) => h("option", { value: s }, s)));
  const planFilter = h("select", { name: "plan", onchange: () => { filters.plan = planFilter.value; load(); } },
    h("option", { value: "" }, "any"), plans.map((p) => h("option", { value: p.name }, p.name)));
  const search = h("input", { type: "search", name: "q", placeholder: "name" });
  const filterForm = h("form", { class: "inline", role: "search", onsubmit: (e) => { e.preventDefault(); filters.q = search.value; load(); } },
    field("Status", statusFilter), field("Plan", planFilter), field("Search", search), h("button", { type: "submit" }, "Filter"));

  replace(main, h("h1", {}, "Keys"),
    h("section", { class: "panel", "aria-labelledby": "new-key" }, h("h2", { id: "new-key" }, "New key"), create),
    flash, detail,
    h("section", { class: "panel", "aria-labelledby": "all-keys" }, h("h2", { id: "all-keys" }, "All keys"), filterForm, listBox));
  await load();
}
