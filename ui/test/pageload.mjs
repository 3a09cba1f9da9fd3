// Times the market page in headless Chromium: from navigation to the jobs table holding
// `rows` rows, `runs` times (the first is cold: the node builds its index then).
//
//   node test/pageload.mjs <address with #token=…> <rows> <runs>
//
// Prints one JSON line: {"ms": [each run's milliseconds]}.

import puppeteer from "puppeteer-core";

const [url, rows, runs] = process.argv.slice(2);
const want = Number(rows);
const browser = await puppeteer.launch({
  executablePath: process.env.PEDALS_CHROMIUM ?? "/usr/bin/chromium-headless-shell",
  headless: "shell",
  args: ["--no-sandbox", "--disable-gpu"],
});
const ms = [];
try {
  const page = await browser.newPage();
  // The first visit stores the token; later ones load the bare address.
  let target = url;
  for (let i = 0; i < Number(runs); i++) {
    const t0 = performance.now();
    await page.goto(target, { waitUntil: "domcontentloaded" });
    await page.waitForFunction(
      (n) => document.querySelectorAll("#jobs tbody tr").length >= n,
      { timeout: 60000, polling: 10 },
      want,
    );
    ms.push(Math.round(performance.now() - t0));
    target = `${new URL(url).origin}/?run=${i}#/`;
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify({ ms }));
