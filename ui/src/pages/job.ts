// One job: its terms, where it is, the challenge window counting down, and every
// transaction that moved it.

import { ApiError, get, send, type JobPage, type JobResultView } from "../api";
import { lineChart, stepChart } from "../chart";
import { addrCell, changed, duration, el, eth, table, txCell } from "../format";

export async function job(root: HTMLElement, id: number): Promise<void> {
  const p = await get<JobPage>(`jobs/${id}`);
  const j = p.job;
  const left = j.challengeEndsAt === null ? 0 : j.challengeEndsAt - p.now;
  const windowText =
    left > 0
      ? `Challenge window: ${duration(left)} left; the worker is paid when it ends unchallenged.`
      : "The challenge window is over: anyone can finalize the job now.";
  if (!changed(`job${id}`, { ...p, now: 0 }) && root.querySelector("#events")) {
    // Only the chain's clock moved: the countdown, not the page.
    const w = document.getElementById("window");
    if (w) w.textContent = windowText;
    return;
  }
  const h = el("h1", `Job ${j.id}`);
  const status = el("p");
  status.append("Status: ", el("span", j.status, `badge ${j.status}`));
  status.id = "status";
  status.setAttribute("aria-live", "polite");
  const terms = el("dl", undefined, "terms");
  const row = (k: string, v: string | Node) => {
    const dd = el("dd");
    dd.append(v);
    terms.append(el("dt", k), dd);
  };
  row("Requester", addrCell(j.requester, p.explorer));
  row("Worker", addrCell(j.worker, p.explorer));
  row("Payment", eth(j.paymentWei));
  row("Collateral", eth(j.collateralWei));
  row("Paid to the worker", eth(j.payoutWei));
  row("Fee", eth(j.feeWei));
  row("Posted in block", String(j.postedBlock));
  const parts: Node[] = [h, status, terms];
  const last = p.progress[p.progress.length - 1];
  if (last) {
    // The worker's signed reports, heard by this node on the network.
    const section = el("section");
    section.id = "training";
    const done = j.status === "claimed" ? "Training" : "Trained";
    const line = el("p", `${done}: step ${last.stepsDone} of ${last.steps}, reported by the worker.`);
    line.id = "training-step";
    const bar = el("progress");
    bar.max = last.steps;
    bar.value = last.stepsDone;
    bar.setAttribute("aria-labelledby", line.id);
    const t0 = p.progress[0].at;
    const points: [number, number][] = p.progress.map((r) => [r.at - t0, r.stepsDone]);
    section.append(
      el("h2", "Progress"),
      line,
      bar,
      stepChart(`Steps trained over time: ${last.stepsDone} of ${last.steps}`, points, "steps", "s"),
    );
    const losses = p.progress.filter((r) => r.loss !== null);
    if (losses.length) {
      const now = losses[losses.length - 1].loss as number;
      const l = el("p", `Training loss at step ${losses[losses.length - 1].stepsDone}: ${now.toFixed(4)} (the worker's report; nothing checks it).`);
      l.id = "loss";
      section.append(
        el("h2", "Loss"),
        l,
        lineChart(
          `Training loss by step, as the worker reported it: ${now.toFixed(4)} at step ${losses[losses.length - 1].stepsDone}`,
          losses.map((r) => [r.stepsDone, r.loss as number]),
          "step",
        ),
      );
    }
    parts.push(section);
  }
  if (j.challengeEndsAt !== null && j.status === "submitted") {
    const w = el("p", windowText, "window");
    w.id = "window";
    w.setAttribute("aria-live", "polite");
    parts.push(w);
  }
  if (["submitted", "finalized", "disputed"].includes(j.status)) {
    parts.push(resultSection(root, id, p.result));
  }
  const events = table(
    "Transactions",
    ["Block", "Event", "Detail", "Transaction"],
    p.events.map((e) => [String(e.block), e.name, e.detail, txCell(e.tx, p.explorer)]),
  );
  events.id = "events";
  parts.push(events);
  if (p.events.some((e) => e.name === "ChallengeOpened")) {
    const d = el("a", "See the dispute, move by move");
    d.href = `#/disputes/${j.id}`;
    d.id = "dispute-link";
    const para = el("p");
    para.append(d);
    parts.push(para);
  }
  const back = el("a", "← Market");
  back.href = "#/";
  parts.push(back);
  root.replaceChildren(...parts);
}

/** The result: fetched and scored by this node when asked, then shown. */
function resultSection(root: HTMLElement, id: number, r: JobResultView | null): HTMLElement {
  const section = el("section");
  section.id = "result-section";
  section.append(el("h2", "Result"));
  const line = el("p");
  line.id = "result";
  line.setAttribute("aria-live", "polite");
  if (r) {
    const score =
      r.accuracy === null
        ? "no samples were kept back to score it (set them when posting)"
        : `accuracy ${(r.accuracy * 100).toFixed(2)}% on ${r.scoredOn} ${r.inference ? "samples of the dataset" : "held-out samples"}`;
    line.textContent = `Saved to ${r.saved}; it matches the worker's on-chain commitment ${r.finalStateHash}; ${score}.`;
    section.append(line);
    return section;
  }
  const button = el("button", "Fetch the result and score it");
  button.id = "fetch-result";
  button.type = "button";
  button.addEventListener("click", () => {
    void (async () => {
      button.disabled = true;
      line.textContent = "Fetching the result from the worker…";
      line.className = "";
      try {
        await send(`jobs/${id}/result`, {});
        await job(root, id);
      } catch (e) {
        line.textContent = e instanceof ApiError ? e.message : String(e);
        line.className = "error";
        button.disabled = false;
      }
    })();
  });
  section.append(button, line);
  return section;
}
