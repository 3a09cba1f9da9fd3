// What the browser scripts share: launching Debian's headless Chromium, the axe-core audit,
// and screenshots at desktop and phone widths.

import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import puppeteer from "puppeteer-core";

const require = createRequire(import.meta.url);
const axeSource = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

/** Prints why and exits 1. */
export function fail(msg) {
  console.error(`browser test failed: ${msg}`);
  process.exit(1);
}

/** Headless Chromium and a page that logs what it says to stderr. */
export async function launch() {
  const browser = await puppeteer.launch({
    executablePath: process.env.PEDALS_CHROMIUM ?? "/usr/bin/chromium-headless-shell",
    headless: "shell",
    // Chromium's sandbox needs user namespaces that containers (and root) often lack.
    args: ["--no-sandbox", "--disable-gpu"],
  });
  const page = await browser.newPage();
  page.on("console", (m) => console.error(`page console: ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => console.error(`page error: ${e.message}`));
  page.on("requestfailed", (r) => console.error(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  // axe-core is injected as a script, which the page's CSP would refuse.
  await page.setBypassCSP(true);
  return { browser, page };
}

/** Fails on any serious or critical axe-core violation; counts them in `seen.violations`. */
export async function audit(page, name, seen) {
  await page.addScriptTag({ content: axeSource });
  const r = await page.evaluate(async () => await window.axe.run(document));
  const bad = r.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  for (const v of bad) {
    console.error(`${name}: ${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target).join(", ")}`);
  }
  seen.violations = (seen.violations ?? 0) + bad.length;
  if (bad.length) fail(`${bad.length} serious accessibility violations on ${name}`);
}

/** `<out>/<name>-desktop.png` and `-phone.png`, whole pages. */
export async function shoot(page, out, name, seen) {
  mkdirSync(out, { recursive: true });
  for (const [w, h, tag] of [
    [1280, 800, "desktop"],
    [390, 844, "phone"],
  ]) {
    await page.setViewport({ width: w, height: h });
    await page.screenshot({ path: join(out, `${name}-${tag}.png`), fullPage: true });
  }
  await page.setViewport({ width: 1280, height: 800 });
  (seen.pages ??= []).push(name);
}
