// A job's disputes on a timeline: every move of the challenger and the worker, what each
// narrowed the disagreement to, how the contract decided, and what moved.

import { get, type DisputePage } from "../api";
import { addrCell, changed, el, txCell } from "../format";

const SIDE: Record<string, string> = {
  challenger: "Challenger",
  worker: "Worker",
  referee: "Contract",
  market: "Market",
};

export async function dispute(root: HTMLElement, id: number): Promise<void> {
  const p = await get<DisputePage>(`disputes/${id}`);
  if (!changed(`dispute${id}`, p) && root.querySelector("#timeline")) return;
  const h = el("h1", `Dispute of job ${id}`);
  const summary = el("dl", undefined, "terms");
  const row = (k: string, v: string | Node) => {
    const dd = el("dd");
    dd.append(v);
    summary.append(el("dt", k), dd);
  };
  for (const d of p.disputes) {
    row("Step challenged", String(d.step));
    row("Challenger", addrCell(d.challenger, p.explorer));
    row("Worker", addrCell(p.job.worker, p.explorer));
    row("Outcome", `${d.outcome}${d.byTimeout && d.outcome !== "open" ? " (a clock ran out)" : ""}`);
  }
  const list = el("ol", undefined, "timeline");
  list.id = "timeline";
  list.setAttribute("aria-label", "Moves, oldest first");
  for (const m of p.moves) {
    const li = el("li", undefined, `move ${m.side}`);
    const head = el("div", undefined, "move-head");
    head.append(el("span", SIDE[m.side] ?? m.side, `side ${m.side}`), el("strong", m.name), el("span", `block ${m.block}`, "muted"));
    li.append(head, el("p", m.detail), txCell(m.tx, p.explorer));
    list.append(li);
  }
  const back = el("a", `← Job ${id}`);
  back.href = `#/jobs/${id}`;
  root.replaceChildren(h, summary, el("h2", "Timeline"), list, back);
}
