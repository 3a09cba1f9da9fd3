// A provider: its stake, what is locked as collateral, its jobs, and what it earned over time.

import { ApiError, get, send, type Me, type ProviderPage } from "../api";
import { stepChart } from "../chart";
import { cards, changed, el, eth, table } from "../format";
import { figures, me, meNow } from "../me";

/** The provider's own daemon: its settings, counters, and pause or resume. */
function operator(root: HTMLElement, address: string, self: Me): HTMLElement {
  const section = el("section");
  section.id = "my-provider";
  const state = el("p");
  state.id = "claiming";
  state.setAttribute("aria-live", "polite");
  state.append(
    "Claiming new jobs: ",
    el("strong", self.paused ? "paused (the jobs it holds go on)" : "on"),
  );
  const button = el("button", self.paused ? "Resume claiming" : "Pause claiming");
  button.id = "pause";
  button.type = "button";
  const problem = el("p", "", "error");
  problem.setAttribute("role", "alert");
  button.addEventListener("click", () => {
    void (async () => {
      button.disabled = true;
      try {
        await send(self.paused ? "me/resume" : "me/pause", {});
        await provider(root, address);
        document.getElementById("pause")?.focus();
      } catch (e) {
        problem.textContent = e instanceof ApiError ? e.message : String(e);
        button.disabled = false;
      }
    })();
  });
  section.append(
    el("h2", "This daemon"),
    state,
    button,
    problem,
    el("h3", "Policy and capacity"),
    figures("Policy and capacity", self.policy),
    el("h3", "Since it started"),
    figures("Counters", self.stats),
  );
  return section;
}

export async function provider(root: HTMLElement, address: string): Promise<void> {
  const p = await get<ProviderPage>(`providers/${address}`);
  const mine = (await me().catch(() => null))?.address.toLowerCase() === address.toLowerCase();
  const self = mine ? await meNow() : null;
  if (!changed(`provider${address}`, { p, self }) && root.querySelector("#provider-jobs")) return;
  const h = el("h1", mine ? "My provider" : "Provider");
  const who = el("p", p.address, "addr");
  const stake = cards("Stake and earnings", [
    ["Staked", eth(p.stakedWei)],
    ["Locked as collateral", eth(p.lockedWei)],
    ["Unbonding", eth(p.unbondingWei)],
    ["Earned", eth(p.earnedWei)],
  ]);
  const section = el("section");
  section.append(el("h2", "Earnings"));
  const points: [number, number][] = p.earnings.map((e) => [e.block, Number(BigInt(e.totalWei)) / 1e18]);
  section.append(
    stepChart(`Earnings of ${p.address} over blocks, in ETH: ${eth(p.earnedWei)} in all`, points, "ETH"),
    table(
      "Payments",
      ["Block", "Job", "Total earned"],
      p.earnings.map((e) => [String(e.block), `#${e.job}`, eth(e.totalWei)]),
    ),
  );
  const jobs = table(
    "Jobs",
    ["Job", "Status", "Payment", "Paid to it"],
    p.jobs.map((j) => {
      const a = el("a", `#${j.id}`);
      a.href = `#/jobs/${j.id}`;
      a.setAttribute("aria-label", `job ${j.id}`);
      return [a, el("span", j.status, `badge ${j.status}`), eth(j.paymentWei), eth(j.payoutWei)];
    }),
  );
  jobs.id = "provider-jobs";
  const back = el("a", "← Market");
  back.href = "#/";
  const parts: Node[] = [h, who, stake];
  if (self) parts.push(operator(root, address, self));
  root.replaceChildren(...parts, section, jobs, back);
}
