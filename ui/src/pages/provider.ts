// A provider: its stake, what is locked as collateral, its jobs, and what it earned over time.

import { get, type ProviderPage } from "../api";
import { stepChart } from "../chart";
import { cards, changed, el, eth, table } from "../format";

export async function provider(root: HTMLElement, address: string): Promise<void> {
  const p = await get<ProviderPage>(`providers/${address}`);
  if (!changed(`provider${address}`, p) && root.querySelector("#provider-jobs")) return;
  const h = el("h1", "Provider");
  const who = el("p", p.address, "addr");
  const figures = cards("Stake and earnings", [
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
  root.replaceChildren(h, who, figures, section, jobs, back);
}
