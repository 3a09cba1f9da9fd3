// The router: `#/` is the market, `#/jobs/N` a job, `#/disputes/N` a job's disputes,
// `#/providers/0x…` a provider, `#/validators/0x…` a validator, `#/post` the form that posts a job. Each page but the form
// is re-read every two seconds while it is shown, so a job's progress appears as it happens.

import "./style.css";
import { ApiError, token } from "./api";
import { el } from "./format";
import { dispute } from "./pages/dispute";
import { job } from "./pages/job";
import { market } from "./pages/market";
import { post } from "./pages/post";
import { provider } from "./pages/provider";
import { validator } from "./pages/validator";
import { linkMe } from "./me";

const root = document.getElementById("main") as HTMLElement;
let timer: number | undefined;

let route = "/";

async function render(): Promise<void> {
  const m = /^\/jobs\/(\d+)$/.exec(route);
  const p = /^\/providers\/(0x[0-9a-fA-F]{40})$/.exec(route);
  const d = /^\/disputes\/(\d+)$/.exec(route);
  const v = /^\/validators\/(0x[0-9a-fA-F]{40})$/.exec(route);
  try {
    if (m) await job(root, Number(m[1]));
    else if (d) await dispute(root, Number(d[1]));
    else if (p) await provider(root, p[1]);
    else if (v) await validator(root, v[1]);
    else await market(root);
  } catch (e) {
    const msg = e instanceof ApiError ? e.message : String(e);
    const alert = el("p", msg, "error");
    alert.setAttribute("role", "alert");
    root.replaceChildren(el("h1", "Cannot show this page"), alert);
  }
}

function show(): void {
  window.clearInterval(timer);
  if (route === "/post") {
    // A form: drawn once, never redrawn under the user's typing.
    post(root);
    return;
  }
  void render();
  timer = window.setInterval(() => void render(), 2000);
}

token();
void linkMe();
window.addEventListener("hashchange", () => {
  if (location.hash === "#main") {
    // The skip link: focus the content and keep the page's route.
    history.replaceState(null, "", `#${route}`);
    root.focus();
    return;
  }
  route = location.hash.replace(/^#/, "") || "/";
  show();
  root.focus();
});
route = location.hash.replace(/^#/, "") || "/";
show();
