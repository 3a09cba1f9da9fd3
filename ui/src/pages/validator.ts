// A validator: its stake, the challenges it opened and how each ended; on its own daemon's
// page (`pedals validator run --ui`), also the jobs it checked, the steps it re-executed and
// what it earned since the daemon started.

import { get, type ValidatorPage } from "../api";
import { cards, changed, el, eth, table } from "../format";
import { figures, me, meNow } from "../me";

export async function validator(root: HTMLElement, address: string): Promise<void> {
  const p = await get<ValidatorPage>(`validators/${address}`);
  const mine = (await me().catch(() => null))?.address.toLowerCase() === address.toLowerCase();
  const self = mine ? await meNow() : null;
  if (!changed(`validator${address}`, { p, self }) && root.querySelector("#challenges")) return;
  const won = p.challenges.filter((c) => c.outcome === "worker lost").length;
  const lost = p.challenges.filter((c) => c.outcome === "worker won").length;
  const parts: Node[] = [
    el("h1", mine ? "My validator" : "Validator"),
    el("p", p.address, "addr"),
    cards("Stake and challenges", [
      ["Staked", eth(p.stakedWei)],
      ["Locked", eth(p.lockedWei)],
      ["Challenges", String(p.challenges.length)],
      ["Won", String(won)],
      ["Lost", String(lost)],
    ]),
  ];
  if (self) {
    const s = self.stats;
    const section = el("section");
    section.id = "my-validator";
    section.append(
      el("h2", "Since this daemon started"),
      cards("Checks", [
        ["Jobs checked", String(s.jobsChecked)],
        ["Steps re-executed", String(s.stepsReexecuted)],
        ["Mismatches found", String(s.mismatches)],
        ["Earned", eth(String(s.earnedWei))],
      ]),
      figures("All counters", s),
      el("h2", "Settings"),
      figures("Settings", self.policy),
    );
    parts.push(section);
  }
  const challenges = table(
    "Challenges",
    ["Job", "Step", "Opened in block", "Outcome"],
    [...p.challenges].reverse().map((d) => {
      const a = el("a", `#${d.job}`);
      a.href = `#/disputes/${d.job}`;
      a.setAttribute("aria-label", `dispute of job ${d.job}`);
      return [a, String(d.step), String(d.openedBlock), d.outcome];
    }),
  );
  challenges.id = "challenges";
  const back = el("a", "← Market");
  back.href = "#/";
  parts.push(challenges, back);
  root.replaceChildren(...parts);
}
