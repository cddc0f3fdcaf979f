// Providers and their accounts: live health and cooldowns per model and account, masked secrets, and the
// account list replaced in one go (secrets are write-only: the API never answers them, so it cannot keep
// some and drop others on the page's say; a PUT without a list keeps the stored accounts).

import * as api from "../api.js";
import { errorBox, field, fmt, h, replace, table } from "../dom.js";

const SECRET_FIELD = { copilot: "github_tokens", antigravity: "refresh_tokens" };

function health(entry) {
  const state = entry.health || "unknown";
  const cls = state === "healthy" ? "ok" : state.startsWith("cool") ? "warn" : state === "unknown" ? "" : "bad";
  return h("span", { class: `badge ${cls}` }, state.replace("_", " "));
}

function liveRows(state, provider) {
  const models = (state && state.models) || [];
  return models
    .filter((m) => m.upstream === provider)
    .flatMap((m) => (m.accounts || []).map((a) => ({ ...a, model: m.model, model_in_flight: m.in_flight })));
}

function providerCard(p, state, reload, flash) {
  const status = h("div", { "aria-live": "polite" });
  const hints = p.account_hints || [];
  const secretField = SECRET_FIELD[p.type] || "api_keys";
  const secrets = h("textarea", { name: "account-secrets", rows: "4", autocomplete: "off", spellcheck: "false" });
  const blocked = (p.headers || []).length > 0;
  const replaceAccounts = h("form", { onsubmit: async (e) => {
    e.preventDefault();
    const list = secrets.value.split("\n").map((s) => s.trim()).filter(Boolean);
    if (!list.length) { replace(status, errorBox("Give at least one account's secret, one per line.")); return; }
    const body = { type: p.type, base_url: p.base_url, [secretField]: list };
    if (p.timeout) body.timeout = p.timeout;
    if (p.max_event_bytes) body.max_event_bytes = p.max_event_bytes;
    if (p.max_response_bytes) body.max_response_bytes = p.max_response_bytes;
    try {
      await api.put(`/admin/providers/${encodeURIComponent(p.name)}`, body);
      await reload();
      replace(flash, h("p", { class: "notice", role: "status" }, `${p.name} now has ${list.length} account(s).`));
    } catch (error) {
      replace(status, errorBox(error));
    }
  } },
  field(`Every account's secret for ${p.name}, one per line (replaces the list)`, secrets),
  h("div", { class: "actions" }, h("button", { type: "submit", disabled: blocked }, "Replace accounts")),
  blocked ? h("p", { class: "muted" }, "This provider sends extra headers, whose values are write-only: change its accounts with the API or the catalog file.") : null);
  const remove = async () => {
    if (!window.confirm(`Delete the provider ${p.name}? Models that use it must go first.`)) return;
    try {
      await api.del(`/admin/providers/${encodeURIComponent(p.name)}`);
      await reload();
    } catch (error) {
      replace(status, errorBox(error));
    }
  };
  return h("section", { class: "panel", "aria-labelledby": `provider-${p.name}` },
    h("h2", { id: `provider-${p.name}` }, p.name, " ", h("span", { class: "badge" }, p.type)),
    h("p", { class: "muted" }, h("code", {}, p.base_url || "")),
    h("h3", {}, `Accounts (${p.accounts ?? hints.length})`),
    hints.length ? h("ul", {}, hints.map((hint, i) => h("li", {}, `#${i} `, h("code", {}, hint)))) : null,
    h("details", {}, h("summary", {}, "Add or remove accounts"), replaceAccounts),
    h("h3", {}, "Health"),
    table([
      { label: "Model", value: (s) => h("code", {}, s.model) },
      { label: "Account", value: (s) => h("code", {}, String(s.account)) },
      { label: "State", value: health },
      { label: "Until", value: (s) => (s.until ? fmt.time(s.until) : "–") },
      { label: "Why", class: "hide-narrow", value: (s) => s.reason || "–" },
      { label: "Error rate", class: "num", value: (s) => (s.error_rate === null || s.error_rate === undefined ? "–" : `${Math.round(100 * s.error_rate)}%`) },
    ], liveRows(state, p.name), { empty: "No live state reported." }),
    h("div", { class: "actions" }, h("button", { type: "button", class: "danger", onclick: remove }, `Delete ${p.name}`)),
    status);
}

export async function providers(main) {
  const list = h("div", {});
  const flash = h("div", { "aria-live": "polite" });
  async function reload() {
    const [catalog, state] = await Promise.all([api.get("/admin/catalog"), api.get("/admin/state")]);
    replace(flash);
    replace(list,
      h("p", { class: "muted" }, `In flight: ${fmt.int(state.in_flight)} · queue depth: ${fmt.int(state.queue_depth)} · usage-writer backlog: ${fmt.int(state.usage_backlog)}`),
      (catalog.providers || []).map((p) => providerCard(p, state, reload, flash)));
  }
  replace(main, h("h1", {}, "Providers"), flash, list);
  await reload();
}
