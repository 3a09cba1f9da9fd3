// Posts jobs from the web app's form in headless Chromium, against a node that `pedals ui`
// serves on a devnet, with a real provider running:
//
//   node test/post.mjs <address with #token=…> <screenshot folder> <options JSON>
//
// Phase "node" ({"phase": "node", "csv", "notData", "password", "earner", "steps", "hidden", "lr", "momentum", "window"}): bad input first
// (a zero and a negative payment, a file that is not a dataset, a wrong keystore password),
// each refused by the page with what to do and nothing posted; then the CSV uploaded, the
// plan, the node's account unlocked, the job posted, and its page followed until finalized
// (recording every status and the worker's progress); then the provider's page shows the
// earnings. Phase "wallet" ({"phase": "wallet", "rpc", "account", "wrongChain"}): a test
// wallet (EIP-1193, backed by the devnet's unlocked account) on the wrong chain, then
// rejecting the signature, each refused with nothing sent; then it posts a job, which the
// page shows open. Phase "pause" (against a provider daemon's page): the header links to "My
// provider", whose button pauses claiming. Prints one JSON line of what it saw; exits 1 on the first failure.

import { audit, fail, launch, shoot } from "./lib.mjs";

const [url, out, optionsJson] = process.argv.slice(2);
if (!url || !out || !optionsJson) {
  console.error("usage: node test/post.mjs <url> <screenshot folder> <options JSON>");
  process.exit(2);
}
const opt = JSON.parse(optionsJson);
const origin = new URL(url).origin;
const seen = { violations: 0, errors: {} };

const { browser, page } = await launch();
const posted = [];
page.on("request", (r) => {
  if (r.method() === "POST") posted.push(new URL(r.url()).pathname);
});

if (opt.phase === "wallet") {
  // The wallet a browser extension would inject. Its answers come from the devnet (whose
  // accounts anvil unlocks), or a wrong chain, or a refusal, as `window.walletMode` says.
  await page.exposeFunction("walletRpc", async (method, params) => {
    const res = await fetch(opt.rpc, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    const body = await res.json();
    if (body.error) throw new Error(body.error.message);
    return body.result;
  });
  await page.evaluateOnNewDocument(
    (account, wrongChain) => {
      window.walletMode = "wrong-chain";
      window.ethereum = {
        request: async ({ method, params }) => {
          if (method === "eth_chainId" && window.walletMode === "wrong-chain") return `0x${wrongChain.toString(16)}`;
          if (method === "eth_requestAccounts") return [account];
          if (method === "eth_sendTransaction" && window.walletMode === "reject") {
            throw Object.assign(new Error("User rejected the request."), { code: 4001 });
          }
          return await window.walletRpc(method, params ?? []);
        },
      };
    },
    opt.account,
    opt.wrongChain,
  );
}

/** Sets an input's value as a person typing would (the form hears `input`). */
const set = (sel, v) =>
  page.$eval(
    sel,
    (e, v) => {
      e.value = v;
      e.dispatchEvent(new Event("input", { bubbles: true }));
    },
    v,
  );
/** Waits until `sel`'s text contains `text`; returns the text. */
const waitText = async (sel, text, timeout = 20000) => {
  await page.waitForFunction((s, t) => document.querySelector(s)?.textContent.includes(t), { timeout, polling: 50 }, sel, text).catch(async () => {
    const now = await page.$eval(sel, (e) => e.textContent).catch(() => "(missing)");
    fail(`${sel} never said "${text}"; it says: ${now}`);
  });
  return page.$eval(sel, (e) => e.textContent.trim());
};
/** Refused in the page with `text`, and no request of `paths` sent. */
const refused = async (name, text, paths) => {
  const msg = await waitText("#form-error", text);
  const sent = posted.filter((p) => paths.includes(p));
  if (sent.length) fail(`${name}: the page sent ${sent} anyway`);
  seen.errors[name] = msg;
};
const jobPosting = ["/api/jobs", "/api/jobs/plan", "/api/jobs/calls", "/api/uploads"];

try {
  await page.goto(url, { waitUntil: "networkidle0" });
  if (opt.phase === "pause") {
    // The provider's daemon: its page from the header's link, then pause.
    await page.waitForSelector("#me-link", { timeout: 20000 });
    await page.click("#me-link");
    await page.waitForSelector("#pause", { timeout: 20000 });
    seen.before = await waitText("#claiming", "Claiming new jobs");
    await page.click("#pause");
    seen.claiming = await waitText("#claiming", "paused");
    await audit(page, "my provider", seen);
    await shoot(page, out, "my-provider", seen);
  } else {
    await page.goto(`${origin}/#/post`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#post-form");
  }

  if (opt.phase === "node") {
    await set("#payment", "0");
    await page.click("#plan-button");
    await refused("zeroPayment", "more than zero", jobPosting);
    await set("#payment", "-1");
    await page.click("#plan-button");
    await refused("negativePayment", "cannot be negative", jobPosting);
    await set("#payment", "0.1");

    const input = await page.$("#dataset-file");
    await input.uploadFile(opt.notData);
    await refused("notADataset", "not a dataset", ["/api/jobs", "/api/jobs/plan", "/api/jobs/calls"]);
    // Long enough that the page sees the worker train (it reports every second).
    if (opt.steps) await set("#steps", String(opt.steps));
    if (opt.hidden) await set("#hidden", opt.hidden);
    if (opt.lr) await set("#lr", String(opt.lr));
    if (opt.momentum !== undefined) await set("#momentum", String(opt.momentum));
    if (opt.window) await set("#window", String(opt.window));
    await input.uploadFile(opt.csv);
    seen.upload = await waitText("#upload-status", "samples of");
    await page.click("#plan-button");
    await page.waitForSelector("#plan dl", { timeout: 30000 });
    seen.plan = await page.$eval("#plan dl", (e) => e.textContent);
    await audit(page, "post", seen);
    await shoot(page, out, "post", seen);

    await page.type("#password", "not the password");
    await page.click("#unlock");
    await refused("wrongPassword", "wrong password", ["/api/jobs", "/api/jobs/calls"]);
    await set("#password", "");
    await page.type("#password", opt.password);
    await page.click("#unlock");
    await page.waitForSelector("#post-node", { timeout: 30000 });
    await page.click("#post-node");
    await page.waitForFunction(() => /^#\/jobs\/\d+$/.test(location.hash), { timeout: 60000 });
    seen.jobId = Number(page.url().split("/").pop());

    // The job's page as the worker claims, trains, submits and the window closes.
    seen.statuses = [];
    const deadline = Date.now() + 240000;
    let shotTraining = false;
    for (;;) {
      const status = await page.$eval("#status .badge", (b) => b.textContent.trim()).catch(() => null);
      if (status && seen.statuses[seen.statuses.length - 1] !== status) seen.statuses.push(status);
      const training = await page.$eval("#training-step", (e) => e.textContent.trim()).catch(() => null);
      if (training) {
        (seen.training ??= []).includes(training) || seen.training.push(training);
        if (!shotTraining && status === "claimed") {
          shotTraining = true;
          await shoot(page, out, "job-training", seen);
        }
      }
      if (status === "finalized") break;
      if (Date.now() > deadline) fail(`job ${seen.jobId} never finalized: ${seen.statuses}`);
      await new Promise((ok) => setTimeout(ok, 200));
    }

    // The worker's reported loss at its last checkpoint, and its chart.
    seen.loss = await waitText("#loss", "Training loss at step");
    if (!(await page.$("#training svg.chart circle"))) fail("the job page has no loss chart");
    // The result, fetched from the worker by the node, checked and scored on the held-out samples.
    await page.click("#fetch-result");
    seen.result = await waitText("#result", "held-out samples", 60000);
    await page.goto(`${origin}/#/providers/${opt.earner}`, { waitUntil: "networkidle0" });
    await page.waitForSelector("#provider-jobs tbody tr", { timeout: 20000 });
    seen.earned = await page.$eval("svg.chart", (s) => s.getAttribute("aria-label"));
    if (seen.earned.endsWith(" 0 ETH in all")) fail(`the provider earned nothing: ${seen.earned}`);
  } else if (opt.phase === "wallet") {
    await set("#payment", "0.05");
    if (opt.model) {
      // Batch inference: the model's state file, run over the dataset in chunks.
      await (await page.$("#model-file")).uploadFile(opt.model);
      seen.model = await waitText("#model-status", "kept by the node");
      await set("#chunk", String(opt.chunk));
    }
    await page.click("#plan-button");
    await page.waitForSelector("#post-wallet", { timeout: 30000 });
    await page.click("#post-wallet");
    await refused("wrongChain", "switch the wallet to chain", ["/api/jobs", "/api/jobs/calls"]);
    await page.evaluate(() => (window.walletMode = "reject"));
    await page.click("#post-wallet");
    await refused("rejected", "You rejected", ["/api/jobs"]);
    await page.evaluate(() => (window.walletMode = "devnet"));
    await page.click("#post-wallet");
    await page.waitForFunction(() => /^#\/jobs\/\d+$/.test(location.hash), { timeout: 60000 });
    seen.jobId = Number(page.url().split("/").pop());
    seen.status = await waitText("#status .badge", "open");
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
