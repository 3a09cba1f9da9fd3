// The daemon that serves the page, when it is a provider's (`pedals provider run --ui`) or a
// validator's (`pedals validator run --ui`): its page is linked from the header, and its own
// figures and controls show on it.

import { ApiError, get, type Me } from "./api";
import { el } from "./format";

let asked: Promise<Me | null> | null = null;

/** The daemon's view of itself, or null for `pedals ui` (asked once per page load). */
export function me(): Promise<Me | null> {
  asked ??= get<Me>("me").catch((e) => {
    if (e instanceof ApiError && e.status === 404) return null;
    asked = null;
    throw e;
  });
  return asked;
}

/** Fresh figures (counters move). */
export function meNow(): Promise<Me> {
  return get<Me>("me");
}

/** Adds "My provider" or "My validator" to the header's navigation. */
export async function linkMe(): Promise<void> {
  const m = await me().catch(() => null);
  const nav = document.querySelector("header nav");
  if (!m || !nav || document.getElementById("me-link")) return;
  const a = el("a", m.role === "provider" ? "My provider" : "My validator");
  a.id = "me-link";
  a.href = m.role === "provider" ? `#/providers/${m.address}` : `#/validators/${m.address}`;
  nav.append(a);
}

/** A definition list of a daemon's settings or counters, keys made readable. */
export function figures(label: string, data: Record<string, unknown>): HTMLElement {
  const dl = el("dl", undefined, "terms");
  dl.setAttribute("aria-label", label);
  for (const [k, v] of Object.entries(data)) {
    const words = k.replace(/([A-Z])/g, " $1").toLowerCase();
    const shown = typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : String(v);
    dl.append(el("dt", words[0].toUpperCase() + words.slice(1)), el("dd", shown));
  }
  return dl;
}
