// Amounts and addresses for people.

const WEI_PER_ETH = 10n ** 18n;

/** Wei (a decimal string) as ETH with up to 6 decimals, e.g. "0.0125 ETH". */
export function eth(wei: string | null): string {
  if (wei === null) return "–";
  const v = BigInt(wei);
  const whole = v / WEI_PER_ETH;
  const frac = (v % WEI_PER_ETH).toString().padStart(18, "0").slice(0, 6).replace(/0+$/, "");
  return `${whole}${frac ? "." + frac : ""} ETH`;
}

/** 0x1234…abcd, with the whole address for screen readers and tooltips. */
export function addr(a: string | null): HTMLElement {
  const el = document.createElement("span");
  if (!a) {
    el.textContent = "–";
    return el;
  }
  el.className = "addr";
  el.title = a;
  el.setAttribute("aria-label", a);
  el.textContent = `${a.slice(0, 6)}…${a.slice(-4)}`;
  return el;
}

/** Seconds as "2 h 5 min", "45 s". */
export function duration(s: number): string {
  if (s <= 0) return "0 s";
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

/**
 * Whether `data` differs from what `key` showed last: the pages are re-read every two
 * seconds, and re-drawn only when something changed, so that keyboard focus and the screen
 * reader's place survive a poll.
 */
const shown = new Map<string, string>();
export function changed(key: string, data: unknown): boolean {
  const s = JSON.stringify(data);
  if (shown.get(key) === s) return false;
  shown.set(key, s);
  return true;
}

/** An element with text and optional class. */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  cls?: string,
): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

/** Labelled figures in a row of cards. */
export function cards(label: string, figures: [string, string][]): HTMLElement {
  const section = el("section", undefined, "cards");
  section.setAttribute("aria-label", label);
  for (const [name, value] of figures) {
    const c = el("div", undefined, "card");
    c.append(el("div", name, "muted"), el("div", value, "value"));
    section.append(c);
  }
  return section;
}

/** A table with a caption, headers and rows of cells (text or elements). */
export function table(caption: string, head: string[], rows: (string | Node)[][]): HTMLElement {
  // A wide table scrolls sideways on a phone: its region takes keyboard focus so that it
  // can be scrolled without a mouse, and is named after the table.
  const wrap = el("div", undefined, "table-wrap");
  wrap.tabIndex = 0;
  wrap.setAttribute("role", "region");
  wrap.setAttribute("aria-label", caption);
  const t = el("table");
  t.append(el("caption", caption));
  const thead = el("thead");
  const hr = el("tr");
  for (const h of head) {
    const th = el("th", h);
    th.scope = "col";
    hr.append(th);
  }
  thead.append(hr);
  const tbody = el("tbody");
  for (const r of rows) {
    const tr = el("tr");
    for (const c of r) {
      const td = el("td");
      td.append(c);
      tr.append(td);
    }
    tbody.append(tr);
  }
  if (rows.length === 0) {
    const tr = el("tr");
    const td = el("td", "None yet.", "muted");
    td.colSpan = head.length;
    tr.append(td);
    tbody.append(tr);
  }
  t.append(thead, tbody);
  wrap.append(t);
  return wrap;
}

/** A transaction hash, linked to the block explorer when the chain has one. */
export function txCell(hash: string, explorer: string | null | undefined): HTMLElement {
  const code = el("code", hash);
  if (!explorer) return code;
  const a = el("a");
  a.href = `${explorer}/tx/${hash}`;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  a.className = "explorer";
  a.setAttribute("aria-label", `transaction ${hash} on the block explorer`);
  a.append(code);
  return a;
}

/** An address, linked to the block explorer when the chain has one. */
export function addrCell(a: string | null, explorer: string | null | undefined): HTMLElement {
  const short = addr(a);
  if (!a || !explorer) return short;
  const link = el("a");
  link.href = `${explorer}/address/${a}`;
  link.rel = "noopener noreferrer";
  link.target = "_blank";
  link.className = "explorer";
  link.append(short);
  return link;
}
