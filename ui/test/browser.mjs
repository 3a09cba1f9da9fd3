// Drives the web app in headless Chromium (Debian's chromium-headless-shell) with
// puppeteer-core, against a node that `pedals ui` serves on a devnet:
//
//   node test/browser.mjs <address with #token=…> <screenshot folder> <expectations JSON>
//
// Expectations: {"jobs": {"<id>": "<status>", …}, "earner": "<provider address>" (optional),
// "dispute": {"job": <id>, "moves": ["GameStarted", …]} (optional), "validator": {"address",
// "job", "outcome"} (optional), "explorer": "<base address>" (optional: every transaction
// links there)}. Checks
// that the market lists every job with its status and the provider with earnings, that the
// token leaves the address bar, that each job's page shows its transactions, that the
// provider's page charts its earnings, that a dispute's timeline shows every move in order,
// that a tab
// without the token gets a message saying what to do, and that axe-core finds no serious or
// critical accessibility violation on any page. Saves a screenshot of every page, at desktop
// and phone widths. Prints one JSON line with what it saw; exits 1 on the first failure.

import { audit as auditPage, fail, launch, shoot as shootPage } from "./lib.mjs";

const [url, out, expectJson] = process.argv.slice(2);
if (!url || !out || !expectJson) {
  console.error("usage: node test/browser.mjs <url> <screenshot folder> <expectations JSON>");
  process.exit(2);
}
const want = JSON.parse(expectJson);

const { browser, page } = await launch();
const seen = { pages: [], violations: 0 };
try {
  const audit = (name) => auditPage(page, name, seen);
  const shoot = (name) => shootPage(page, out, name, seen);

  await page.goto(url, { waitUntil: "networkidle0" });
  if (page.url().includes("token=")) fail("the token stays in the address bar");
  await page.waitForSelector("#jobs tbody tr", { timeout: 20000 });
  const rows = await page.$$eval("#jobs tbody tr", (trs) =>
    trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
  );
  for (const [id, status] of Object.entries(want.jobs)) {
    const row = rows.find((r) => r[0] === `#${id}`);
    if (!row) fail(`job ${id} is not listed: ${JSON.stringify(rows)}`);
    if (row[1] !== status) fail(`job ${id} shows ${row[1]}, expected ${status}`);
  }
  if (want.earner) {
    const providers = await page.$$eval("#providers tbody tr", (trs) =>
      trs.map((tr) => ({
        address: tr.querySelector(".addr")?.getAttribute("title") ?? "",
        earned: tr.lastElementChild?.textContent.trim() ?? "",
      })),
    );
    const earner = providers.find((p) => p.address.toLowerCase() === want.earner.toLowerCase());
    if (!earner) fail(`provider ${want.earner} is not listed: ${JSON.stringify(providers)}`);
    if (earner.earned === "0 ETH" || earner.earned === "–") fail(`provider earned ${earner.earned}`);
    seen.earned = earner.earned;
  }
  await audit("market");
  await shoot("market");

  for (const [id, status] of Object.entries(want.jobs)) {
    await page.goto(`${new URL(url).origin}/#/jobs/${id}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#events tbody tr", { timeout: 20000 });
    const shown = await page.$eval("#status .badge", (b) => b.textContent.trim());
    if (shown !== status) fail(`job ${id}'s page shows ${shown}, expected ${status}`);
    const events = await page.$$eval("#events tbody tr", (trs) =>
      trs.map((tr) => tr.children[1]?.textContent.trim()),
    );
    if (events[0] !== "JobPosted") fail(`job ${id}'s transactions: ${events}`);
    if (want.explorer) {
      // Each transaction links to the block explorer, opening without a referrer.
      const links = await page.$$eval("#events tbody a.explorer", (as) => as.map((a) => [a.href, a.rel]));
      if (links.length !== events.length) fail(`job ${id}: ${links.length} explorer links for ${events.length} transactions`);
      for (const [href, rel] of links) {
        if (!/^https?:\/\/[^/]+\/tx\/0x[0-9a-f]{64}$/.test(href) || !href.startsWith(want.explorer) || !rel.includes("noreferrer")) {
          fail(`job ${id}: explorer link ${href} (${rel})`);
        }
      }
    }
    if (status === "finalized" && !events.includes("JobFinalized")) fail(`job ${id}: ${events}`);
    seen[`job${id}`] = events;
    await audit(`job ${id}`);
    await shoot(`job-${id}`);
  }

  // The provider's page: its jobs, and the earnings chart with its table.
  if (want.earner) {
    await page.goto(`${new URL(url).origin}/#/providers/${want.earner}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#provider-jobs tbody tr", { timeout: 20000 });
    if (!(await page.$("svg.chart path.series"))) fail("the provider page has no earnings chart");
    const label = await page.$eval("svg.chart", (s) => s.getAttribute("aria-label"));
    if (!label.includes(seen.earned)) fail(`the chart's label (${label}) does not say ${seen.earned}`);
    await audit("provider");
    await shoot("provider");
  }

  // A dispute's page: every move on the timeline, in order, and how it ended.
  if (want.dispute) {
    const { job, moves } = want.dispute;
    await page.goto(`${new URL(url).origin}/#/jobs/${job}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#dispute-link", { timeout: 20000 });
    await page.click("#dispute-link");
    await page.waitForSelector("#timeline li", { timeout: 20000 });
    const shown = await page.$$eval("#timeline li strong", (s) => s.map((e) => e.textContent.trim()));
    const game = shown.filter((n) => moves.includes(n));
    if (JSON.stringify(game) !== JSON.stringify(moves)) fail(`the timeline shows ${shown}, expected ${moves}`);
    seen.timeline = shown;
    await audit("dispute");
    await shoot("dispute");
  }

  // A validator's page: the challenge it opened, and how it ended.
  if (want.validator) {
    const { address, job, outcome } = want.validator;
    await page.goto(`${new URL(url).origin}/#/validators/${address}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#challenges tbody tr", { timeout: 20000 });
    const rows = await page.$$eval("#challenges tbody tr", (trs) =>
      trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
    );
    if (!rows.some((r) => r[0] === `#${job}` && r[3] === outcome)) {
      fail(`the validator's page shows ${JSON.stringify(rows)}, expected job ${job} ${outcome}`);
    }
    seen.challenges = rows;
    await audit("validator");
    await shoot("validator");
  }

  // A tab that never had the token: the page says what to do, and shows no data.
  const stranger = await (await browser.createBrowserContext()).newPage();
  await stranger.goto(`${new URL(url).origin}/#/`, { waitUntil: "networkidle0" });
  const alert = await stranger.waitForSelector("[role=alert]", { timeout: 10000 });
  const text = await alert.evaluate((e) => e.textContent);
  if (!text.includes("pedals ui")) fail(`a tab without the token shows: ${text}`);
  if (await stranger.$("#jobs")) fail("a tab without the token shows the jobs");
  seen.refused = text;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
