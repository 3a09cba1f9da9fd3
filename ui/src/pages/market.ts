// The market: totals, every job with its status, and the providers with their stake.

import { get, type Market } from "../api";
import { addr, cards, changed, el, eth, table } from "../format";

function jobLink(id: number): HTMLElement {
  const a = el("a", `#${id}`);
  a.href = `#/jobs/${id}`;
  a.setAttribute("aria-label", `job ${id}`);
  return a;
}

function providerLink(address: string): HTMLElement {
  const a = el("a");
  a.href = `#/providers/${address}`;
  a.append(addr(address));
  return a;
}

function badge(status: string): HTMLElement {
  return el("span", status, `badge ${status}`);
}

export async function market(root: HTMLElement): Promise<void> {
  const m = await get<Market>("market");
  const chain = document.getElementById("chain");
  if (chain) chain.textContent = `chain ${m.chainId} · block ${m.block}`;
  if (!changed("market", { ...m, block: 0 }) && root.querySelector("#jobs")) return;
  const h = el("h1", "Market");
  const t = m.totals;
  const totals = cards("Totals", [
    ["Jobs", String(t.jobs)],
    ["Open", String(t.open)],
    ["Running", String(t.running)],
    ["Settled", String(t.settled)],
    ["Volume", eth(t.volumeWei)],
    ["Fees", eth(t.feesWei)],
  ]);
  const jobs = table(
    "Jobs, newest first",
    ["Job", "Status", "Requester", "Worker", "Payment", "Fee"],
    [...m.jobs]
      .sort((a, b) => b.id - a.id)
      .map((j) => [jobLink(j.id), badge(j.status), addr(j.requester), addr(j.worker), eth(j.paymentWei), eth(j.feeWei)]),
  );
  jobs.id = "jobs";
  const providers = table(
    "Providers",
    ["Account", "Staked", "Locked", "Unbonding", "Jobs", "Earned"],
    m.providers.map((p) => [providerLink(p.address), eth(p.stakedWei), eth(p.lockedWei), eth(p.unbondingWei), String(p.jobs), eth(p.earnedWei)]),
  );
  providers.id = "providers";
  const disputes = table(
    "Disputes",
    ["Job", "Step", "Challenger", "Opened in block", "Outcome"],
    [...m.disputes].reverse().map((d) => {
      const a = el("a", `#${d.job}`);
      a.href = `#/disputes/${d.job}`;
      a.setAttribute("aria-label", `dispute of job ${d.job}`);
      const outcome = d.byTimeout && d.outcome !== "open" ? `${d.outcome} (clock)` : d.outcome;
      return [a, String(d.step), addr(d.challenger), String(d.openedBlock), outcome];
    }),
  );
  disputes.id = "disputes";
  root.replaceChildren(h, totals, jobs, providers, disputes);
}
