// The dashboard: sign-in, the monitors overview and a page per monitor, drawn from the GraphQL
// API and kept current by its subscriptions. Routes live in the fragment: `#/`,
// `#/monitors/<id>`.

import { ApiError, Live, gql, session } from "./gql.js";
import { h, notice } from "./dom.js";
import { overview } from "./overview.js";
import { monitorPage } from "./monitor.js";

const main = document.getElementById("main");
const status = document.getElementById("live-status");
let live = null;
let teardown = () => {};


function signInForm(error) {
  const input = h("input", {
    id: "api-key",
    name: "api-key",
    type: "password",
    autocomplete: "current-password",
    required: true,
    spellcheck: "false",
  });
  const form = h("form", { class: "sign-in" },
    h("h1", {}, "Sign in"),
    h("p", {}, "Use a Vigil API key (viewer, editor or admin). It stays in this tab only."),
    h("label", { for: "api-key" }, "API key"),
    input,
    error ? h("p", { class: "error", role: "alert" }, error) : "",
    h("button", { type: "submit" }, "Sign in"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    session.signIn(input.value.trim());
    try {
      await gql("{ monitors(first: 1) { items { id } } }");
      route();
    } catch (e) {
      session.signOut();
      main.replaceChildren(signInForm(e instanceof ApiError ? e.message : String(e)));
    }
  });
  setTimeout(() => input.focus(), 0);
  return form;
}

async function route() {
  teardown();
  teardown = () => {};
  notice("");
  const signOut = document.getElementById("sign-out");
  if (!session.key()) {
    if (live) { live.close(); live = null; }
    signOut.hidden = true;
    status.textContent = "";
    main.replaceChildren(signInForm());
    return;
  }
  signOut.hidden = false;
  if (!live) live = new Live((s) => { status.textContent = s; status.dataset.state = s; });
  const path = location.hash.replace(/^#/, "") || "/";
  const monitor = path.match(/^\/monitors\/(.+)$/);
  try {
    const view = monitor
      ? await monitorPage(decodeURIComponent(monitor[1]), live)
      : await overview(live);
    main.replaceChildren(view.element);
    teardown = view.teardown;
    document.title = `${view.title} · Vigil`;
    const heading = main.querySelector("h1");
    if (heading) { heading.tabIndex = -1; heading.focus(); }
  } catch (e) {
    if (e instanceof ApiError && (e.code === "UNAUTHENTICATED" || e.code === "UNAUTHORIZED")) {
      session.signOut();
      main.replaceChildren(signInForm(e.message));
    } else {
      main.replaceChildren(h("h1", {}, "Something went wrong"), h("p", { class: "error" },
        e instanceof Error ? e.message : String(e)));
    }
  }
}

document.getElementById("sign-out").addEventListener("click", () => {
  session.signOut();
  location.hash = "#/";
  route();
});
window.addEventListener("hashchange", route);
route();
