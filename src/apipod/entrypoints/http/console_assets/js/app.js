// The console's shell: sign-in, navigation between pages (by the URL's hash), sign-out.

import * as api from "./api.js";
import { errorBox, field, h, replace } from "./dom.js";
import { overview } from "./pages/overview.js";
import { keys } from "./pages/keys.js";
import { plans } from "./pages/plans.js";
import { providers } from "./pages/providers.js";
import { usage } from "./pages/usage.js";

const PAGES = [
  { id: "overview", title: "Overview", render: overview },
  { id: "keys", title: "Keys", render: keys },
  { id: "plans", title: "Plans", render: plans },
  { id: "providers", title: "Providers", render: providers },
  { id: "usage", title: "Usage", render: usage },
];

const root = document.getElementById("root");
let signedIn = false;

function pageOf(hash) {
  const id = (hash || "").replace(/^#\/?/, "").split("?")[0];
  return PAGES.find((p) => p.id === id) || PAGES[0];
}

function signInView(message) {
  const secret = h("input", { type: "password", name: "secret", autocomplete: "current-password", required: true });
  const status = h("div", { "aria-live": "polite" }, message ? errorBox(message) : null);
  const button = h("button", { type: "submit", class: "primary" }, "Sign in");
  const form = h("form", {
    onsubmit: async (event) => {
      event.preventDefault();
      button.disabled = true;
      try {
        await api.signIn(secret.value);
        signedIn = true;
        render();
      } catch (error) {
        replace(status, errorBox(error.status === 403 ? "That is not the admin secret." : error));
        button.disabled = false;
        secret.focus();
      }
    },
  }, field("Admin secret", secret), button);
  replace(root, h("main", { id: "main", class: "signin" },
    h("div", { class: "panel" }, h("h1", {}, "apipod console"),
      h("p", { class: "muted" }, "Sign in with the gateway's admin secret (ADMIN_SECRET)."), status, form)));
  secret.focus();
}

async function render({ moved = false } = {}) {
  if (!signedIn) return signInView();
  const page = pageOf(location.hash);
  const nav = h("nav", { "aria-label": "Console" }, h("ul", {}, PAGES.map((p) =>
    h("li", {}, h("a", { href: `#/${p.id}`, "aria-current": p === page ? "page" : false }, p.title)))));
  const main = h("main", { id: "main", tabindex: "-1" }, h("p", { class: "muted" }, "Loading…"));
  const signOut = h("button", { type: "button", onclick: async () => {
    await api.signOut();
    signedIn = false;
    location.hash = "";
    render();
  } }, "Sign out");
  replace(root, h("header", { class: "top" }, h("span", { class: "brand" }, "apipod"), nav, h("span", { class: "spacer" }), signOut), main);
  document.title = `${page.title} · apipod console`;
  if (moved) main.focus({ preventScroll: true }); // a new page: keyboard and screen reader users start at its content
  try {
    await page.render(main);
  } catch (error) {
    replace(main, h("h1", {}, page.title), errorBox(error));
  }
}

api.onSignedOut(() => {
  if (signedIn) {
    signedIn = false;
    signInView("Your session ended; sign in again.");
  }
});

window.addEventListener("hashchange", () => render({ moved: true }));

async function start() {
  try {
    signedIn = (await api.session()).signed_in;
  } catch (error) {
    signedIn = false;
  }
  render();
}

start();
