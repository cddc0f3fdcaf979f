// Plans: routes with weights, aliases and budgets; edit the weights in place, or the whole plan as JSON.

import * as api from "../api.js";
import { errorBox, field, h, replace, table } from "../dom.js";

function budgetText(b) {
  const window = typeof b.window === "object" && b.window !== null
    ? Object.entries(b.window).map(([k, v]) => `${v} ${k}`).join(" ") : b.window;
  const limits = Object.entries(b).filter(([k, v]) => k !== "window" && v !== null && v !== undefined);
  return `per ${window}: ${limits.map(([k, v]) => `${k} ${v}`).join(", ")}`;
}

function planCard(plan, reload, flash) {
  const status = h("div", { "aria-live": "polite" });
  const weights = (plan.routes || []).map((r, i) =>
    h("input", { type: "number", min: "0", step: "any", name: `weight-${i}`, value: String(r.weight ?? 1), "aria-label": `Weight of ${r.model} in ${plan.name}` }));
  const json = h("textarea", { name: "plan-json", "aria-label": `Plan ${plan.name} as JSON`, spellcheck: "false" }, JSON.stringify(plan, null, 2));
  async function save(body) {
    replace(status);
    try {
      await api.put(`/admin/plans/${encodeURIComponent(plan.name)}`, body);
      await reload();
      replace(flash, h("p", { class: "notice", role: "status" }, `Saved plan ${plan.name}.`));
    } catch (error) {
      replace(status, errorBox(error));
    }
  }
  const routes = h("form", { onsubmit: (e) => {
    e.preventDefault();
    save({ ...plan, routes: plan.routes.map((r, i) => ({ ...r, weight: Number(weights[i].value) })) });
  } },
  table([
    { label: "Model", value: (r) => h("code", {}, r.model) },
    { label: "Weight", value: (r) => weights[plan.routes.indexOf(r)] },
  ], plan.routes || [], { empty: "No routes." }),
  (plan.routes || []).length ? h("button", { type: "submit", class: "primary" }, `Save weights of ${plan.name}`) : null);
  const aliases = plan.aliases || [];
  const budgets = plan.budgets || [];
  return h("section", { class: "panel", "aria-labelledby": `plan-${plan.name}` },
    h("h2", { id: `plan-${plan.name}` }, plan.name),
    h("h3", {}, "Routes"), routes,
    h("h3", {}, "Aliases"),
    aliases.length ? h("ul", {}, aliases.map((a) => h("li", {}, h("code", {}, a.name), " → ",
      (a.routes || []).map((r) => `${r.model} (${r.weight ?? 1})`).join(", ")))) : h("p", { class: "muted" }, "None."),
    h("h3", {}, "Budgets"),
    budgets.length ? h("ul", {}, budgets.map((b) => h("li", {}, budgetText(b)))) : h("p", { class: "muted" }, "None."),
    h("details", {}, h("summary", {}, "Edit as JSON"),
      h("form", { onsubmit: (e) => {
        e.preventDefault();
        let body;
        try { body = JSON.parse(json.value); } catch (error) { replace(status, errorBox(`Not valid JSON: ${error.message}`)); return; }
        save(body);
      } }, json, h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save JSON")))),
    status);
}

export async function plans(main) {
  const list = h("div", {});
  const flash = h("div", { "aria-live": "polite" });
  async function reload() {
    const catalog = await api.get("/admin/catalog");
    replace(flash);
    replace(list, (catalog.plans || []).map((p) => planCard(p, reload, flash)));
  }
  const name = h("input", { name: "new-plan", required: true, pattern: "[A-Za-z0-9._-]+" });
  const status = h("div", { "aria-live": "polite" });
  const create = h("form", { class: "inline", onsubmit: async (e) => {
    e.preventDefault();
    try {
      await api.put(`/admin/plans/${encodeURIComponent(name.value)}`, { routes: [] });
      name.value = "";
      await reload();
    } catch (error) {
      replace(status, errorBox(error));
    }
  } }, field("New plan name", name), h("button", { type: "submit" }, "Add plan"));
  replace(main, h("h1", {}, "Plans"), h("section", { class: "panel" }, create, status), flash, list);
  await reload();
}
