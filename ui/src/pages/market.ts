// The market: totals, every job with its status, and the providers with their stake.

import { get, type Market } from "../api";
import { stepChart } from "../chart";
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
  // Validators, as the chain knows them: the accounts that opened challenges.
  const byChallenger = new Map<string, { opened: number; won: number }>();
  for (const d of m.disputes) {
    const v = byChallenger.get(d.challenger) ?? { opened: 0, won: 0 };
    v.opened += 1;
    if (d.outcome === "worker lost") v.won += 1;
    byChallenger.set(d.challenger, v);
  }
  const validators = table(
    "Validators (accounts that challenged a result)",
    ["Account", "Challenges", "Won"],
    [...byChallenger].map(([a, v]) => {
      const link = el("a");
      link.href = `#/validators/${a}`;
      link.append(addr(a));
      return [link, String(v.opened), String(v.won)];
    }),
  );
  validators.id = "validators";
  const history = el("section");
  history.id = "history";
  const wei = (s: string) => Number(BigInt(s)) / 1e18;
  const last = m.overTime[m.overTime.length - 1];
  history.append(
    el("h2", "Volume and fees over time"),
    stepChart(
      `Volume escrowed over blocks, in ETH: ${eth(t.volumeWei)} in all`,
      m.overTime.map((p) => [p.block, wei(p.volumeWei)]),
      "ETH",
    ),
    stepChart(
      `Fees paid to the protocol over blocks, in ETH: ${eth(t.feesWei)} in all`,
      m.overTime.map((p) => [p.block, wei(p.feesWei)]),
      "ETH",
    ),
    el("p", last ? `Up to block ${last.block}; the totals above are the same figures.` : "No jobs yet.", "muted"),
  );
  root.replaceChildren(h, totals, jobs, history, providers, validators, disputes);
}
